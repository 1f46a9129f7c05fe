import type { ScanFinding } from '../request-scanner.js';
import { heldSecretFinding, type FoundWhere } from './findings.js';
import type { NeedleSet } from './needles.js';
import { findPattern, findPatternDecoded, type PatternHit } from './patterns.js';

/** Credential shapes are short; a match split across chunks fits in this much carried-over text. */
export const PATTERN_CARRY_BYTES = 512;

export interface PatternFinder {
  /** A pattern finding for `match` (fingerprinted), in the bottle's dlp mode. */
  (rule: string, match: string, where: FoundWhere): ScanFinding;
}

/**
 * Scans a stream one chunk at a time in bounded memory: each chunk is searched together with the last
 * bytes of what came before, so a match split across chunk boundaries is found, and only once.
 */
export class ChunkInspector {
  private carry = Buffer.alloc(0);
  readonly carryBytes: number;
  private readonly reported = new Set<string>();

  constructor(
    private readonly needles: NeedleSet,
    private readonly patterns: PatternFinder | undefined,
    private readonly where: FoundWhere,
  ) {
    this.carryBytes = Math.max(needles.maxLength, patterns ? PATTERN_CARRY_BYTES : 0);
  }

  /** Bytes at the end of `buffer` that may begin a held secret: kept back until the next chunk settles it. */
  pendingTail(buffer: Buffer): number {
    return this.needles.pendingTail(buffer);
  }

  /** The first blocking finding, else audit findings not reported before (each rule once per stream). */
  inspect(chunk: Buffer): ScanFinding[] {
    const window = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const fresh = this.carry.length;
    this.carry = Buffer.from(window.subarray(Math.max(0, window.length - this.carryBytes + 1)));
    const held = this.needles.first(window, fresh);
    if (held) return [heldSecretFinding(held, this.where)];
    if (!this.patterns) return [];
    const text = window.toString('latin1');
    const hit = findPattern(text, fresh) ?? findPatternDecoded(text);
    return hit ? this.patternFindings(hit) : [];
  }

  /** What a credential shape found in this stream amounts to: a held secret, a pattern finding, or nothing new. */
  patternFindings(hit: PatternHit): ScanFinding[] {
    if (!this.patterns) return [];
    // A held secret decoded out of an encoding no needle has (a base64 run split oddly) is still that secret;
    // part of one (its encoded form not yet whole in this chunk) is left to its needles, which name it.
    const matched = Buffer.from(hit.match, 'latin1');
    const decodedHeld = this.needles.first(matched);
    if (decodedHeld) return [heldSecretFinding(decodedHeld, this.where)];
    if (this.needles.needles.some((n) => n.encoding === 'raw' && n.bytes.includes(matched))) return [];
    const finding = this.patterns(hit.pattern.name, hit.match, this.where);
    if (finding.action === 'block') return [finding];
    if (this.reported.has(hit.pattern.name)) return [];
    this.reported.add(hit.pattern.name);
    return [finding];
  }
}
