import type { NeedleHit, NeedleSet } from './needles.js';
import { findPattern, SECRET_PATTERNS, type PatternHit } from './patterns.js';

/** What a join found: a held secret or a credential shape, both starting before a cut-out label. */
export type JoinedHit = { held: NeedleHit } | { pattern: PatternHit };

/** What a token run is made of: the vendors' alphabets and the base64, hex and percent forms of held secrets. */
const TOKEN_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+/=%-')
  TOKEN_BYTE[c.charCodeAt(0)] = 1;

/** The label a piece may carry at the start of its message: one short word and a colon, then a few blanks. */
const LABEL_WORD = 16;
const LABEL_BLANKS = 16;
const LABEL = new RegExp(String.raw`^(?:[A-Za-z0-9_-]{1,${LABEL_WORD}}:)?[ \t]{0,${LABEL_BLANKS}}`);
const LONGEST_LABEL = LABEL_WORD + 1 + LABEL_BLANKS;

const VENDOR_PREFIXES = SECRET_PATTERNS.flatMap((p) => (p.prefix ? [p.prefix.source] : []));
const VENDOR_PREFIX_SOURCE = String.raw`\b(?:${VENDOR_PREFIXES.join('|')})`;
const VENDOR_PREFIX = new RegExp(VENDOR_PREFIX_SOURCE, 'g');
const HAS_VENDOR_PREFIX = new RegExp(VENDOR_PREFIX_SOURCE);

/**
 * A credential cut across WebSocket messages with a short label before each piece ("part1: ghp_ABC",
 * then "part2: DEF..."). The connection's stream inspector already reads the messages end to end, so a
 * piece that follows the previous one directly is found there; what it cannot see is the piece behind
 * a label. So when a message ends in an unfinished credential (a vendor's prefix and too few characters
 * after it, or the first part of a held secret), that tail is kept, and the next message's leading token
 * run, with a `word:` label and blanks before it cut out, is tried joined to it. Only one tail is kept
 * per connection, no longer than the stream inspector's own carry; ordinary messages (JSON, sentences)
 * end in no token run or in one that starts with no prefix, and cost a few byte comparisons.
 */
export class SplitTokenJoiner {
  private tail = '';
  /** Where in the tail a label was last cut out; 0 when the tail is text exactly as it was sent. */
  private splice = 0;

  /**
   * `patterns`: whether credential shapes are looked for on this connection (held secrets always are).
   * `maxTail`: the most kept, at most the stream inspector's carry, so a piece with no label between
   * is always within what that inspector reads.
   */
  constructor(
    private readonly needles: NeedleSet,
    private readonly patterns: boolean,
    private readonly maxTail: number,
  ) {}

  /**
   * Each data frame in order; `startsMessage` is false for a continuation fragment, which never has a
   * label of its own. Returns a credential found only by joining across a cut-out label.
   */
  next(payload: Buffer, startsMessage: boolean): JoinedHit | undefined {
    const kept = this.tail;
    const keptSplice = this.splice;
    this.tail = '';
    this.splice = 0;
    if (kept === '') return this.keepTail(payload, 0);
    const head = payload.toString('latin1', 0, Math.min(payload.length, LONGEST_LABEL + this.maxTail));
    const labelEnd = startsMessage ? LABEL.exec(head)![0].length : 0;
    const limit = Math.min(head.length, labelEnd + this.maxTail - kept.length);
    let runEnd = labelEnd;
    while (runEnd < limit && TOKEN_BYTE[head.charCodeAt(runEnd)] === 1) runEnd++;
    const joined = kept + head.slice(labelEnd, runEnd);
    const splice = labelEnd > 0 ? kept.length : keptSplice;
    if (splice > 0) {
      const hit = this.crossing(joined, kept.length, splice);
      if (hit) return hit;
    }
    // The whole frame went on with the piece: the next message may carry more of it.
    if (runEnd === payload.length) return this.keepTail(Buffer.from(joined, 'latin1'), splice);
    return this.keepTail(payload, 0);
  }

  /** A credential in `joined` that starts before the cut and ends in the new part (anything else was seen). */
  private crossing(joined: string, keptLength: number, splice: number): JoinedHit | undefined {
    const bytes = Buffer.from(joined, 'latin1');
    const held = this.needles.first(bytes, keptLength);
    if (held && held.index < splice) return { held };
    // A tail kept only as the start of a held secret is not run through every credential shape.
    if (!this.patterns || !HAS_VENDOR_PREFIX.test(joined.slice(0, splice))) return undefined;
    const pattern = findPattern(joined, keptLength + 1);
    if (pattern && pattern.index < splice) return { pattern };
    return undefined;
  }

  /** Keeps the unfinished credential `text` ends in, if any; `splice` is where a label was cut out of it. */
  private keepTail(text: Buffer, splice: number): undefined {
    const start = this.tailStart(text);
    if (start === text.length) return undefined;
    this.tail = text.toString('latin1', start);
    this.splice = splice > start ? splice - start : 0;
    return undefined;
  }

  /** Where the unfinished credential at the end of `text` starts (its length when there is none). */
  private tailStart(text: Buffer): number {
    const floor = Math.max(0, text.length - this.maxTail);
    let runStart = text.length;
    while (runStart > floor && TOKEN_BYTE[text[runStart - 1]] === 1) runStart--;
    if (runStart === text.length) return text.length;
    const run = text.subarray(runStart);
    let start = text.length - this.needles.pendingTail(run);
    if (this.patterns) {
      const runText = run.toString('latin1');
      VENDOR_PREFIX.lastIndex = 0;
      for (let m = VENDOR_PREFIX.exec(runText); m !== null; m = VENDOR_PREFIX.exec(runText)) {
        // A whole credential there was the stream inspector's to find; only an unfinished one is kept.
        if (findPattern(runText.slice(m.index)) === undefined) {
          start = Math.min(start, runStart + m.index);
          break;
        }
      }
    }
    return start;
  }
}
