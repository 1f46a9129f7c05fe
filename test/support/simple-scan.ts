import type { ScanFinding } from '../../src/gateway/request-scanner.js';
import type { PatternFinder } from '../../src/gateway/scan/body-inspector.js';
import { heldSecretFinding, type FoundWhere } from '../../src/gateway/scan/findings.js';
import type { Needle, NeedleHit, NeedleSet } from '../../src/gateway/scan/needles.js';
import {
  DECODED_ONLY_PATTERNS,
  SECRET_PATTERNS,
  type PatternHit,
  type SecretPattern,
} from '../../src/gateway/scan/patterns.js';

/**
 * The scanner's searches as they were before the fast paths (one search per needle, every regular
 * expression over every whole window, every decoder on every text): the reference the fast paths are
 * held to. Kept as written then, only moved here.
 */

export function simpleFirst(needles: Needle[], haystack: Buffer, endsFrom = 0): NeedleHit | undefined {
  let best: NeedleHit | undefined;
  for (const needle of needles) {
    const from = Math.max(0, endsFrom - needle.bytes.length + 1);
    const index = haystack.indexOf(needle.bytes, from);
    if (index >= 0 && (best === undefined || index < best.index)) best = { needle, index };
  }
  return best;
}

export function simpleAll(needles: Needle[], haystack: Buffer): NeedleHit[] {
  const hits: NeedleHit[] = [];
  let from = 0;
  for (;;) {
    let best: NeedleHit | undefined;
    for (const needle of needles) {
      const index = haystack.indexOf(needle.bytes, from);
      if (index >= 0 && (best === undefined || index < best.index)) best = { needle, index };
    }
    if (!best) return hits;
    hits.push(best);
    from = best.index + best.needle.bytes.length;
  }
}

export function simplePendingTail(needles: Needle[], maxLength: number, buffer: Buffer): number {
  let longest = 0;
  const from = Math.max(0, buffer.length - maxLength + 1);
  for (const { bytes } of needles) {
    for (let p = buffer.indexOf(bytes[0], from); p >= 0; p = buffer.indexOf(bytes[0], p + 1)) {
      const tail = buffer.length - p;
      if (tail <= longest) break;
      if (tail < bytes.length && buffer.subarray(p).equals(bytes.subarray(0, tail))) longest = tail;
    }
  }
  return longest;
}

const ALL_PATTERNS = [...SECRET_PATTERNS, ...DECODED_ONLY_PATTERNS];
const GLOBAL = new Map<SecretPattern, RegExp>(
  ALL_PATTERNS.map((p) => [p, new RegExp(p.regex.source, `${p.regex.flags}g`)]),
);

export function simpleFindPattern(
  text: string,
  endsFrom = 0,
  patterns: readonly SecretPattern[] = SECRET_PATTERNS,
): PatternHit | undefined {
  let best: PatternHit | undefined;
  for (const pattern of patterns) {
    const global = GLOBAL.get(pattern)!;
    global.lastIndex = 0;
    for (let m = global.exec(text); m !== null; m = global.exec(text)) {
      if (m.index + m[0].length < endsFrom) continue;
      if (pattern.accept && !pattern.accept(m[0])) continue;
      if (best === undefined || m.index < best.index) best = { pattern, match: m[0], index: m.index };
      break;
    }
  }
  return best;
}

export function simpleFindPatternDecoded(text: string): PatternHit | undefined {
  for (const view of simpleDecodedViews(text)) {
    const hit = simpleFindPattern(view, 0, ALL_PATTERNS);
    if (hit) return hit;
  }
  return undefined;
}

const MIN_ENCODED_RUN = 16;
const MAX_PERCENT_LEVELS = 3;
const MAX_ROUNDS = 2;
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const BASE64_RUN = new RegExp(String.raw`[A-Za-z0-9+/_-]{${MIN_ENCODED_RUN},}={0,2}`, 'g');
const HEX_RUN = /(?:[0-9A-Fa-f]{2}[-: ]?){8,}/g;
const ZERO_WIDTH = /\xe2\x80[\x8b-\x8d]|\xe2\x81\xa0|\xef\xbb\xbf/g;

function percentDecoded(text: string): string {
  return text.replace(PERCENT_RUN, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('latin1'));
}

export function simpleDecodedViews(text: string): string[] {
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

function oneLevel(text: string): string[] {
  const out: string[] = [];
  let percent = text;
  for (let level = 0; level < MAX_PERCENT_LEVELS; level++) {
    const next = percentDecoded(percent);
    if (next === percent) break;
    out.push((percent = next));
  }
  const visible = text.replace(ZERO_WIDTH, '');
  if (visible !== text) out.push(visible);
  const base64 = decodedRuns(text, BASE64_RUN, (run) => Buffer.from(run, 'base64'));
  if (base64) out.push(base64);
  const hex = decodedRuns(text, HEX_RUN, (run) => {
    const digits = run.replace(/[-: ]/g, '');
    return Buffer.from(digits.slice(0, digits.length - (digits.length % 2)), 'hex');
  });
  if (hex) out.push(hex);
  return out;
}

function decodedRuns(text: string, pattern: RegExp, decode: (run: string) => Buffer): string | undefined {
  const decoded: string[] = [];
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    if (m[0].length >= MIN_ENCODED_RUN) decoded.push(decode(m[0]).toString('latin1'));
  }
  return decoded.length > 0 ? decoded.join('\n') : undefined;
}

const PATTERN_CARRY_BYTES = 512;

/** The chunk inspector as it was: the whole window copied, searched per needle, every pattern run on its text. */
export class SimpleChunkInspector {
  private carry = Buffer.alloc(0);
  private readonly carryBytes: number;
  private readonly reported = new Set<string>();

  constructor(
    private readonly needles: NeedleSet,
    private readonly patterns: PatternFinder | undefined,
    private readonly where: FoundWhere,
  ) {
    this.carryBytes = Math.max(needles.maxLength, patterns ? PATTERN_CARRY_BYTES : 0);
  }

  inspect(chunk: Buffer): ScanFinding[] {
    const window = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const fresh = this.carry.length;
    this.carry = Buffer.from(window.subarray(Math.max(0, window.length - this.carryBytes + 1)));
    const held = simpleFirst(this.needles.needles, window, fresh);
    if (held) return [heldSecretFinding(held, this.where)];
    if (!this.patterns) return [];
    const text = window.toString('latin1');
    const hit = simpleFindPattern(text, fresh) ?? simpleFindPatternDecoded(text);
    if (!hit) return [];
    const matched = Buffer.from(hit.match, 'latin1');
    const decodedHeld = simpleFirst(this.needles.needles, matched);
    if (decodedHeld) return [heldSecretFinding(decodedHeld, this.where)];
    if (this.needles.needles.some((n) => n.encoding === 'raw' && n.bytes.includes(matched))) return [];
    const finding = this.patterns(hit.pattern.name, hit.match, this.where);
    if (finding.action === 'block') return [finding];
    if (this.reported.has(hit.pattern.name)) return [];
    this.reported.add(hit.pattern.name);
    return [finding];
  }
}
