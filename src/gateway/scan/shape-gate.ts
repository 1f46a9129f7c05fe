import { isHexDigit, MIN_ENCODED_RUN, ZERO_WIDTH_CHARS } from './decoded-views.js';
import { SCHEME_SEPARATOR, SHORTEST_SHAPE_RUN } from './patterns.js';
import { byteClass, hasRun, TOKEN } from './token-runs.js';

/**
 * Whether a credential shape can be in `bytes` (latin1 text) or in any view decoded from it
 * (decoded-views.ts): false lets a chunk of a binary upload skip the text, the decoders and the regular
 * expressions. Exact, not a guess: each way a shape can be reached leaves a trace here.
 *
 * - In the text itself: a token run (token-runs.ts), or the `://` of a connection string.
 * - Through base64 or hex: a run long enough to decode, a token run too.
 * - Through percent-decoding and zero-width removal: each character of such a view comes from a token
 *   character, an escape or a zero-width character's bytes, so a token run in the view is a run of
 *   those in the text (the escape class below). A `://` appears in a view only from an escaped `:`,
 *   `/` or `%` or from a zero-width character between, whose bytes are escaped or all there.
 */
const ZERO_WIDTH_BYTES = ZERO_WIDTH_CHARS.map((z) => Buffer.from(z, 'latin1'));
const ZERO_WIDTH_BYTE_VALUES = new Set(ZERO_WIDTH_BYTES.flatMap((z) => [...z]));
const PERCENT = 0x25;
const ESCAPED_TOKEN = byteClass([
  ...[...Array(256).keys()].filter((b) => TOKEN[b] === 1),
  PERCENT,
  ...ZERO_WIDTH_BYTE_VALUES,
]);
/** Bytes whose escape can complete a `://` the text does not have. */
const REVEALING = byteClass([0x3a, 0x2f, PERCENT, ...ZERO_WIDTH_BYTE_VALUES]);
const RUN = Math.min(SHORTEST_SHAPE_RUN, MIN_ENCODED_RUN);

export function mayHoldShape(bytes: Buffer): boolean {
  return (
    hasRun(bytes, ESCAPED_TOKEN, RUN) ||
    bytes.includes(SCHEME_SEPARATOR, 0, 'latin1') ||
    hasRevealingEscape(bytes) ||
    ZERO_WIDTH_BYTES.some((z) => bytes.includes(z))
  );
}

function hasRevealingEscape(bytes: Buffer): boolean {
  for (let at = bytes.indexOf(PERCENT); at >= 0 && at + 2 < bytes.length; at = bytes.indexOf(PERCENT, at + 1)) {
    if (isHexDigit(bytes[at + 1]) && isHexDigit(bytes[at + 2]) && REVEALING[hexValue(bytes[at + 1], bytes[at + 2])])
      return true;
  }
  return false;
}

function hexValue(high: number, low: number): number {
  return (digit(high) << 4) | digit(low);
}

function digit(code: number): number {
  return code <= 0x39 ? code - 0x30 : (code | 0x20) - 0x57;
}
