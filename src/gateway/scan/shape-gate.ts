import { isHexDigit, MIN_ENCODED_RUN, ZERO_WIDTH_CHARS } from './decoded-views.js';
import { SCHEME_SEPARATOR, SHORTEST_SHAPE_RUN } from './patterns.js';
import { byteClass, hasRun, TOKEN } from './token-runs.js';

/**
 * Whether a credential shape can be in `bytes` (latin1 text) or in any view decoded from it
 * (decoded-views.ts): false lets a chunk of a binary upload skip the text, the decoders and the regular
 * expressions. Exact, not a guess; what it takes for a shape to be reachable:
 *
 * - In the text itself: a token run (token-runs.ts), or the `://` of a connection string.
 * - Through base64 or hex: a run long enough to decode, a token run too.
 * - Through zero-width removal: a zero-width character, whose bytes are all there or one is escaped.
 * - Through percent-decoding: an escape decodes to one character, so a token run in the view is a run of
 *   token characters and escapes here (the class below). A `://` the text lacks needs an escaped `:` or
 *   `/`. Decoding again changes the view only if the first decoding made an escape: from an escaped `%`,
 *   or from a `%` followed by escaped hex digits (`%%33a` is `%3a` once decoded). Without those
 *   revealing escapes the view is the one decoded text, held to the two rules above.
 */
const ZERO_WIDTH_BYTES = ZERO_WIDTH_CHARS.map((z) => Buffer.from(z, 'latin1'));
const PERCENT = 0x25;
const TOKEN_OR_ESCAPE = byteClass([...[...Array(256).keys()].filter((b) => TOKEN[b] === 1), PERCENT]);
/** Bytes whose escape reveals a `://`, a zero-width character or another escape. */
const REVEALING = byteClass([0x3a, 0x2f, PERCENT, ...ZERO_WIDTH_BYTES.flatMap((z) => [...z])]);
const RUN = Math.min(SHORTEST_SHAPE_RUN, MIN_ENCODED_RUN);

export function mayHoldShape(bytes: Buffer): boolean {
  return (
    hasRun(bytes, TOKEN_OR_ESCAPE, RUN) ||
    bytes.includes(SCHEME_SEPARATOR, 0, 'latin1') ||
    hasRevealingEscape(bytes) ||
    ZERO_WIDTH_BYTES.some((z) => bytes.includes(z))
  );
}

function hasRevealingEscape(bytes: Buffer): boolean {
  for (let at = bytes.indexOf(PERCENT); at >= 0 && at + 2 < bytes.length; at = bytes.indexOf(PERCENT, at + 1)) {
    if (!isHexDigit(bytes[at + 1]) || !isHexDigit(bytes[at + 2])) continue;
    const decoded = hexValue(bytes[at + 1], bytes[at + 2]);
    if (REVEALING[decoded] === 1) return true;
    const afterPercent = bytes[at - 1] === PERCENT || (bytes[at - 2] === PERCENT && isHexDigit(bytes[at - 1]));
    if (afterPercent && isHexDigit(decoded)) return true;
  }
  return false;
}

function hexValue(high: number, low: number): number {
  return (digit(high) << 4) | digit(low);
}

function digit(code: number): number {
  return code <= 0x39 ? code - 0x30 : (code | 0x20) - 0x57;
}
