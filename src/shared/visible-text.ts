/**
 * Text that came from inside a bottle (a capability reason or host, a
 * Dockerfile it asked for, an agent's exit message, anything in an event the
 * agent influenced) may carry terminal control bytes: ESC sequences that
 * move the cursor or recolour the screen, CR that redraws a line, C1 codes
 * some terminals read as CSI. Shown raw, they let the agent rewrite what the
 * operator reads (a request to pipe a script from the internet redrawn as
 * "egress pypi.org:443"). Characters that draw nothing do the same more
 * quietly: zero-width spaces and joiners, bidirectional controls that reorder
 * what is drawn (Trojan Source), tag characters that carry a hidden message.
 * Every such string goes through this module before it reaches a terminal.
 */

/**
 * Controls (C0 including TAB, LF, CR; DEL; C1), every invisible format character (Cf: zero-width
 * characters, bidirectional controls, the word joiner and invisible operators, the byte order mark,
 * tag characters), the line and paragraph separators, lone surrogates, and the invisible fillers
 * and variation selectors that are not Cf but draw nothing either.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.codePointAt(0)!;
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
  return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
}

/** One line with every control or invisible character spelled out (`\x1b`, `\r`, `\n`, `\u202e`): safe to print. */
export function visibleText(value: unknown): string {
  return String(value).replace(UNSAFE, escapeChar);
}

/** Program output (many lines): line breaks and tabs stay, every other unsafe character is spelled out. */
export function visibleOutput(value: string): string {
  return value.replace(UNSAFE, (ch) => (ch === '\n' || ch === '\t' ? ch : escapeChar(ch)));
}

/**
 * A multi-line text (a Dockerfile) as lines, each made visible: line breaks
 * stay line breaks, a lone CR or any other control character is spelled out.
 */
export function visibleLines(value: string): string[] {
  return value.split(/\r?\n/).map(visibleText);
}

/** How many lines of a reason are shown before the rest is only counted. */
export const MAX_SHOWN_REASON_LINES = 12;

/**
 * A text a bottle wrote to explain itself (a capability reason), as lines
 * made visible and bounded: past `max` lines the rest is counted, not shown,
 * so blank-line padding cannot push what is shown above it (the request it
 * explains) off the screen.
 */
export function visibleBoundedLines(value: string, max: number = MAX_SHOWN_REASON_LINES): string[] {
  const lines = visibleLines(value);
  if (lines.length <= max) return lines;
  const hidden = lines.length - (max - 1);
  return [...lines.slice(0, max - 1), `… (${hidden} more lines)`];
}

/** A UTF-16 code unit as a JSON escape. */
const jsonEscape = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;

/**
 * A JSON line safe for a terminal: JSON.stringify already escapes C0, but
 * leaves DEL, C1, the invisible and bidirectional characters raw; the JSON
 * stays valid and parses to the same value.
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE, (ch) =>
    Array.from({ length: ch.length }, (_, i) => jsonEscape(ch.charCodeAt(i))).join(''),
  );
}
