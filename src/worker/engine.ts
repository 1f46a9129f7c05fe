import type { Queue } from 'bullmq';
import type { EffectRequest, NewEvent } from '../effects/types.js';
import { foldEvent, foldHistory, initialBottleState, isTerminal, type BottleState } from '../machines/index.js';
import { CURRENT_VERSION, parseEvent, type LifecycleEvent } from '../events/schema.js';
import { AppendConflictError, type EventLog } from '../events/log.js';
import { effectJobId } from './queue.js';

/** How often an append is retried when another worker appended first. */
const MAX_APPEND_ATTEMPTS = 50;

/**
 * The decide step shared by command and effect jobs: fold the new events onto
 * the bottle's current state, append them with optimistic concurrency, then
 * enqueue the effects the machine asked for. A job retried after a crash
 * passes the same `cause`, so its events are never appended twice and the
 * effects it requested are enqueued again under the same deterministic job
 * ids (BullMQ ignores a duplicate id).
 */
export class BottleEngine {
  constructor(
    private readonly log: EventLog,
    private readonly queue: Queue,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async apply(identity: string, newEvents: NewEvent[], cause?: string): Promise<LifecycleEvent[]> {
    if (newEvents.length === 0) return [];
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      const { state, lastSeq } = await this.currentState(identity);
      const at = this.clock().toISOString();
      const drafted = newEvents.map((e, i) =>
        parseEvent({ seq: lastSeq + i + 1, type: e.type, at, v: versionOf(e.type), data: e.data }),
      );
      let next = state;
      const effects: EffectRequest[] = [];
      for (const ev of drafted) {
        const folded = foldEvent(next, ev);
        next = folded.state;
        effects.push(...folded.effects);
      }
      try {
        const result = await this.log.append(identity, lastSeq, drafted, next, cause);
        if (result.duplicateOf) {
          // Already appended by an earlier try of this job: re-enqueue what it asked for.
          await this.enqueue(await this.effectsOf(identity, result.duplicateOf.first, result.duplicateOf.last));
          return result.events;
        }
        await this.enqueue(effects);
        return result.events;
      } catch (err) {
        if (err instanceof AppendConflictError) continue;
        throw err;
      }
    }
    throw new Error(`could not append to ${identity} after ${MAX_APPEND_ATTEMPTS} conflicting attempts`);
  }

  /** Live state from the cache when it is current, else folded from the log. */
  async currentState(identity: string): Promise<{ state: BottleState; lastSeq: number }> {
    const lastSeq = await this.log.lastSeq(identity);
    if (lastSeq === 0) return { state: initialBottleState(identity), lastSeq };
    const cached = await this.log.liveState(identity);
    if (cached && cached.seq === lastSeq) return { state: cached, lastSeq };
    return { state: foldHistory(identity, await this.log.read(identity)).state, lastSeq };
  }

  /** Effects requested by events first..last, recomputed by folding (no effect runs). */
  private async effectsOf(identity: string, first: number, last: number): Promise<EffectRequest[]> {
    const events = await this.log.read(identity, 1, last);
    let state = initialBottleState(identity);
    const effects: EffectRequest[] = [];
    for (const ev of events) {
      const folded = foldEvent(state, ev);
      state = folded.state;
      if (ev.seq >= first) effects.push(...folded.effects);
    }
    return effects;
  }

  /**
   * Re-enqueues the effects requested by the last lifecycle event of every
   * unfinished bottle. Run at worker start: if a worker died between an
   * append and its enqueue, the bottle would otherwise wait forever.
   */
  async reconcile(identity: string): Promise<number> {
    const events = await this.log.read(identity);
    let state = initialBottleState(identity);
    let lastEffects: EffectRequest[] = [];
    for (const ev of events) {
      const folded = foldEvent(state, ev);
      state = folded.state;
      if (folded.effects.length > 0) lastEffects = folded.effects;
    }
    if (isTerminal(state)) return 0;
    await this.enqueue(lastEffects);
    return lastEffects.length;
  }

  async enqueue(effects: EffectRequest[]): Promise<void> {
    for (const req of effects) {
      await this.queue.add('effect', req, { jobId: effectJobId(req) });
    }
  }
}

function versionOf(type: string): number {
  const versions = CURRENT_VERSION as Record<string, number>;
  const v = versions[type];
  if (v === undefined) throw new Error(`unknown event type ${type}`);
  return v;
}
