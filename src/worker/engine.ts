import type { Queue } from 'bullmq';
import { AppendConflictError, stampEvents } from '../event-store/log.js';
import type { LifecycleEvent, NewEvent } from '../events/schema.js';
import {
  foldEvents,
  initialBottleState,
  isTerminal,
  pendingEffects,
  type BottleState,
  type EffectRequest,
} from '../machines/index.js';
import { currentState, type BottleLog } from '../engine/bottle-log.js';
import { effectJobId, effectQueueName } from '../engine/queues.js';

/** Opens (or returns the already open) queue of this name. */
export type QueueByName = (name: string) => Queue;

/** The host a bottle is pinned to: its plan's, from start (a resume keeps it). */
function hostOf(state: BottleState): string {
  const host = state.context.plan?.host;
  if (!host) throw new Error(`${state.context.identity} has no plan, so no host to run its effects on`);
  return host;
}

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
    private readonly log: BottleLog,
    private readonly queueByName: QueueByName,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async apply(identity: string, newEvents: readonly NewEvent[], cause?: string): Promise<LifecycleEvent[]> {
    if (newEvents.length === 0) return [];
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      const { state, lastSeq } = await this.currentState(identity);
      const drafted = stampEvents(lastSeq, newEvents, this.clock().toISOString());
      const effects: EffectRequest[] = [];
      const next = foldEvents(state, drafted, (_event, requested) => effects.push(...requested));
      try {
        const result = await this.log.append(identity, lastSeq, drafted, next, cause);
        if (result.duplicateOf) {
          // Already appended by an earlier try of this job: re-enqueue what it asked for.
          const { first, last } = result.duplicateOf;
          await this.enqueue(await this.effectsRequestedBy(identity, first, last), hostOf(next));
          return result.events;
        }
        if (effects.length > 0) await this.enqueue(effects, hostOf(next));
        return result.events;
      } catch (err) {
        if (err instanceof AppendConflictError) continue;
        throw err;
      }
    }
    throw new Error(`could not append to ${identity} after ${MAX_APPEND_ATTEMPTS} conflicting attempts`);
  }

  currentState(identity: string): Promise<{ state: BottleState; lastSeq: number }> {
    return currentState(this.log, identity);
  }

  /** Effects requested by events first..last, recomputed by folding (no effect runs). */
  private async effectsRequestedBy(identity: string, first: number, last: number): Promise<EffectRequest[]> {
    const effects: EffectRequest[] = [];
    foldEvents(initialBottleState(identity), await this.log.read(identity, 1, last), (event, requested) => {
      if (event.seq >= first) effects.push(...requested);
    });
    return effects;
  }

  /**
   * Re-enqueues the effects an unfinished bottle is waiting on. Run at worker
   * start: if a worker died between an append and its enqueue, the bottle
   * would otherwise wait forever. Returns how many were enqueued.
   */
  async reconcile(identity: string): Promise<number> {
    const events = await this.log.read(identity);
    const state = foldEvents(initialBottleState(identity), events);
    if (isTerminal(state)) return 0;
    const pending = pendingEffects(identity, events);
    if (pending.length > 0) await this.enqueue(pending, hostOf(state));
    return pending.length;
  }

  /** Effects go to the queues of the bottle's host; commands that caused them may have been decided anywhere. */
  async enqueue(effects: readonly EffectRequest[], host: string): Promise<void> {
    for (const req of effects) {
      await this.queueByName(effectQueueName(req.kind, host)).add('effect', req, { jobId: effectJobId(req) });
    }
  }
}
