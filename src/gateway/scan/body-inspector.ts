import type { ScanFinding } from '../request-scanner.js';
import { heldSecretFinding, type FoundWhere } from './findings.js';
import type { NeedleHit, NeedleSet } from './needles.js';
import { findPattern, findPatternDecoded, type PatternHit } from './patterns.js';
import { mayHoldShape } from './shape-gate.js';

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
  private carry: Buffer = Buffer.alloc(0);
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
    const carried = this.carry;
    // The chunk is searched where it lies; only the seam (the carry and the chunk's first bytes) is copied.
    const seam = carried.length > 0 ? Buffer.concat([carried, chunk.subarray(0, this.carryBytes - 1)]) : chunk;
    this.carry = nextCarry(carried, chunk, this.carryBytes - 1);
    const held = this.heldIn(seam, carried.length, chunk);
    if (held) return [heldSecretFinding(held, this.where)];
    if (!this.patterns) return [];
    // Patterns are looked for in the whole window as before, but only when one can be there at all.
    if (!mayHoldShape(seam) && (seam === chunk || !mayHoldShape(chunk))) return [];
    const text = (carried.length > 0 ? Buffer.concat([carried, chunk]) : chunk).toString('latin1');
    const fresh = carried.length;
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

  /**
   * The first held secret in the carry followed by the chunk that ends in the chunk: one that starts in the
   * carry lies within the seam (no form is longer than the carry), any other is found in the chunk itself.
   */
  private heldIn(seam: Buffer, fresh: number, chunk: Buffer): NeedleHit | undefined {
    if (fresh === 0) return this.needles.first(chunk);
    const acrossSeam = this.needles.first(seam, fresh);
    if (acrossSeam && acrossSeam.index < fresh) return acrossSeam;
    const inChunk = this.needles.first(chunk);
    return inChunk && { ...inChunk, index: inChunk.index + fresh };
  }
}

/** The last `length` bytes of the carry followed by the chunk, copied (the chunk's buffer is passed on). */
function nextCarry(carried: Buffer, chunk: Buffer, length: number): Buffer {
  if (chunk.length >= length) return Buffer.from(chunk.subarray(chunk.length - length));
  return Buffer.concat([carried, chunk]).subarray(Math.max(0, carried.length + chunk.length - length));
}
