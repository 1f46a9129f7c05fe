import type { ScanFinding } from '../request-scanner.js';
import { ChunkInspector, type PatternFinder } from './body-inspector.js';
import { heldSecretFinding } from './findings.js';
import type { NeedleSet } from './needles.js';
import { SplitTokenJoiner } from './split-token-joiner.js';

/**
 * The frames a client sends on one WebSocket connection, read as one stream of payloads (a secret split
 * over fragments or messages is found whole), plus a credential cut across messages behind a label.
 */
export class FrameInspector {
  private readonly stream: ChunkInspector;
  private readonly joiner: SplitTokenJoiner;

  constructor(needles: NeedleSet, patterns: PatternFinder | undefined) {
    this.stream = new ChunkInspector(needles, patterns, 'frame');
    this.joiner = new SplitTokenJoiner(needles, patterns !== undefined, Math.max(0, this.stream.carryBytes - 1));
  }

  /** A blocking finding first, else an audit finding; `startsMessage` is false for a continuation fragment. */
  inspect(payload: Buffer, startsMessage: boolean): ScanFinding | undefined {
    const found = this.stream.inspect(payload)[0];
    // The joiner sees every frame, found or not, so what it keeps stays in step with the stream.
    const joined = this.joiner.next(payload, startsMessage);
    if (found?.action === 'block' || !joined) return found;
    const fromJoin =
      'held' in joined ? heldSecretFinding(joined.held, 'frame') : this.stream.patternFindings(joined.pattern)[0];
    return fromJoin?.action === 'block' ? fromJoin : (found ?? fromJoin);
  }
}
