/**
 * Every credential shape, and every run the decoders take apart, is a long stretch of token characters:
 * letters, digits and the few marks encodings and key formats use (`+/_-.:` and the space that separates
 * the groups of a card number or an IBAN). A text without such a stretch cannot hold one, so most of a
 * binary upload is passed over after one look at every few bytes, without a regular expression.
 */
const TOKEN_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-.: ';

/** A byte class as a table: 1 for its members. */
export type ByteClass = Uint8Array;

export function byteClass(members: Iterable<number>): ByteClass {
  const table = new Uint8Array(256);
  for (const code of members) table[code] = 1;
  return table;
}

export const TOKEN: ByteClass = byteClass([...TOKEN_CHARS].map((ch) => ch.charCodeAt(0)));

/**
 * Whether `bytes` holds `length` members of `members` in a row. Only every `length`-th byte is looked
 * at until one is a member; then the run it belongs to is measured backwards.
 */
export function hasRun(bytes: Uint8Array, members: ByteClass, length: number): boolean {
  for (let end = length - 1; end < bytes.length;) {
    let start = end;
    while (start > end - length && members[bytes[start]] === 1) start--;
    if (start === end - length) return true;
    // A run of `length` cannot hold `start`: the first that can ends `length` after it.
    end = start + length;
  }
  return false;
}

/** `hasRun` of token characters in latin1 text (a decoded view). */
export function hasTokenRunInText(text: string, length: number): boolean {
  for (let end = length - 1; end < text.length;) {
    let start = end;
    while (start > end - length && isToken(text.charCodeAt(start))) start--;
    if (start === end - length) return true;
    end = start + length;
  }
  return false;
}

function isToken(code: number): boolean {
  return code < 256 && TOKEN[code] === 1;
}
