import { printParseErrorCode, visit } from 'jsonc-parser';

/**
 * Node's JSON.parse messages often omit where the error is, which is the one
 * thing a person editing a manifest needs. jsonc-parser (VS Code's) locates
 * it; values still come from JSON.parse, so the manifest stays strict JSON.
 */
export interface JsonSyntaxLocation {
  line: number;
  column: number;
  message: string;
}

/** Strict JSON: jsonc-parser refuses comments and trailing commas only when told to. */
const STRICT = { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false };

type ErrorName = ReturnType<typeof printParseErrorCode>;

export function locateJsonSyntaxError(text: string): JsonSyntaxLocation | null {
  const open: string[] = [];
  let first: { name: ErrorName; offset: number; closer: string } | undefined;
  visit(
    text,
    {
      onObjectBegin: () => void open.push('}'),
      onObjectEnd: () => void open.pop(),
      onArrayBegin: () => void open.push(']'),
      onArrayEnd: () => void open.pop(),
      onError: (code, offset) => {
        first ??= { name: printParseErrorCode(code), offset, closer: open.at(-1) ?? '' };
      },
    },
    STRICT,
  );
  if (!first) return null;
  const { offset, message } = explain(text, first.name, first.offset, first.closer);
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n'), message };
}

function explain(text: string, name: ErrorName, offset: number, closer: string): { offset: number; message: string } {
  const found = offset >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text[offset])}`;
  // A trailing comma shows up as a missing key or value before the closing bracket: point at the comma.
  const closing = text.charAt(offset);
  const comma = text.slice(0, offset).trimEnd().length - 1;
  const missing = name === 'PropertyNameExpected' || name === 'ValueExpected';
  if (missing && (closing === '}' || closing === ']') && text.charAt(comma) === ',')
    return { offset: comma, message: `trailing comma before "${closing}"` };
  const messages: Partial<Record<ErrorName, string>> = {
    PropertyNameExpected: `${found}, expected a quoted key`,
    ValueExpected: `${found}, expected a value`,
    ColonExpected: `${found}, expected ":"`,
    CommaExpected: `${found}, expected "," or "${closer}"`,
    CloseBraceExpected: `${found}, expected "}"`,
    CloseBracketExpected: `${found}, expected "]"`,
    EndOfFileExpected: `${found} after the end of the JSON value`,
    InvalidSymbol: found,
    InvalidNumberFormat: 'invalid number',
    UnexpectedEndOfNumber: 'number cut short',
    InvalidCommentToken: 'a comment',
    UnexpectedEndOfComment: 'an unclosed comment',
    UnexpectedEndOfString: 'string not closed on its line (missing closing quote?)',
    InvalidUnicode: 'bad \\u escape in string',
    InvalidEscapeCharacter: 'bad escape in string',
    InvalidCharacter: 'control character inside a string',
  };
  return { offset, message: messages[name] ?? found };
}
