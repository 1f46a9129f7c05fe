/**
 * Text that came from inside a bottle (a capability reason or host, a
 * Dockerfile it asked for, an agent's exit message, anything in an event the
 * agent influenced) may carry terminal control bytes: ESC sequences that
 * move the cursor or recolour the screen, CR that redraws a line, C1 codes
 * some terminals read as CSI. Shown raw, they let the agent rewrite what the
 * operator reads (a request to pipe a script from the internet redrawn as
 * "egress pypi.org:443"). Every such string goes through this module before
 * it reaches a terminal.
 */

/** C0 (including TAB, LF, CR), DEL, C1, and the bidirectional overrides that reorder what is drawn. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line with every control character spelled out (`\x1b`, `\r`, `\n`, `\u202e`): safe to print. */
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

/**
 * A JSON line safe for a terminal: JSON.stringify already escapes C0, but
 * leaves DEL, C1 and the bidirectional overrides raw; the JSON stays valid
 * and parses to the same value.
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
