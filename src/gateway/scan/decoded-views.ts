/**
 * What an agent hiding a credential does to it before it leaves: percent-encoding it once or several
 * times, base64 or hex (with or without separators), zero-width characters between its letters. Held
 * secrets are matched in each of those forms directly (encodings.ts); a credential shape the gateway
 * has never seen can only be found by decoding, so these are the texts the shapes are also looked for
 * in. Each view is bounded by its input: a run decodes to fewer bytes than it has.
 */

import { hasTokenRunInText } from './token-runs.js';

/** Shorter runs decode to too little to hold a credential. */
export const MIN_ENCODED_RUN = 16;
/** Percent-encoding applied more often than this is never a client's doing. */
export const MAX_PERCENT_LEVELS = 3;
/** Views of views: base64 inside percent-encoding, hex inside base64. */
const MAX_ROUNDS = 2;

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const BASE64_RUN = new RegExp(String.raw`[A-Za-z0-9+/_-]{${MIN_ENCODED_RUN},}={0,2}`, 'g');
const HEX_RUN = /(?:[0-9A-Fa-f]{2}[-: ]?){8,}/g;
/** U+200B..U+200D, U+2060 and U+FEFF as UTF-8 bytes read as latin1 text. */
export const ZERO_WIDTH_CHARS = ['\xe2\x80\x8b', '\xe2\x80\x8c', '\xe2\x80\x8d', '\xe2\x81\xa0', '\xef\xbb\xbf'];
const ZERO_WIDTH = new RegExp(ZERO_WIDTH_CHARS.join('|'), 'g');

/** Percent-decoding once, byte for byte (a scan, not a parse: what does not decode stays as it is). */
export function percentDecoded(text: string): string {
  return text.replace(PERCENT_RUN, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('latin1'));
}

/** How many times percent-decoding still changes `text` (0 for text with no escapes), up to one over the maximum. */
export function percentLevels(text: string): number {
  let levels = 0;
  for (let current = text; levels <= MAX_PERCENT_LEVELS; levels++) {
    const next = percentDecoded(current);
    if (next === current) break;
    current = next;
  }
  return levels;
}

/** `text` decoded every way it might have been hidden, the views that differ from it (latin1 text). */
export function decodedViews(text: string): string[] {
  const views = new Set<string>();
  let round = [text];
  for (let i = 0; i < MAX_ROUNDS && round.length > 0; i++) {
    const next: string[] = [];
    for (const t of round) for (const view of oneLevel(t)) if (view !== text && !views.has(view)) next.push(view);
    for (const view of next) views.add(view);
    round = next;
  }
  return [...views];
}

export function hasPercentEscapeInText(text: string): boolean {
  for (let at = text.indexOf('%'); at >= 0 && at + 2 < text.length; at = text.indexOf('%', at + 1)) {
    if (isHexDigit(text.charCodeAt(at + 1)) && isHexDigit(text.charCodeAt(at + 2))) return true;
  }
  return false;
}

export function isHexDigit(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || ((code | 0x20) >= 0x61 && (code | 0x20) <= 0x66);
}

/** Each decoder runs only where its input can occur: a scan of random bytes finds none of them. */
function oneLevel(text: string): string[] {
  const out: string[] = [];
  let percent = text;
  for (let level = 0; level < MAX_PERCENT_LEVELS && hasPercentEscapeInText(percent); level++) {
    const next = percentDecoded(percent);
    if (next === percent) break;
    out.push((percent = next));
  }
  if (ZERO_WIDTH_CHARS.some((z) => text.includes(z))) out.push(text.replace(ZERO_WIDTH, ''));
  if (!hasTokenRunInText(text, MIN_ENCODED_RUN)) return out;
  const base64 = decodedRuns(text, BASE64_RUN, (run) => Buffer.from(run, 'base64'));
  if (base64) out.push(base64);
  const hex = decodedRuns(text, HEX_RUN, (run) => {
    const digits = run.replace(/[-: ]/g, '');
    return Buffer.from(digits.slice(0, digits.length - (digits.length % 2)), 'hex');
  });
  if (hex) out.push(hex);
  return out;
}

/** Every run of `pattern` decoded, one per line; undefined when there is none. */
function decodedRuns(text: string, pattern: RegExp, decode: (run: string) => Buffer): string | undefined {
  const decoded: string[] = [];
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    if (m[0].length >= MIN_ENCODED_RUN) decoded.push(decode(m[0]).toString('latin1'));
  }
  return decoded.length > 0 ? decoded.join('\n') : undefined;
}
