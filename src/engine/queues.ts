import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { SealedSecretsSchema } from '../shared/sealed-secrets.js';
import type { EffectKind, EffectRequest } from '../machines/effects.js';

/** Commands (from the CLI) and host tasks: any worker may decide a command. */
export const QUEUE_NAME = 'bottle';
const LIFELONG_EFFECTS: ReadonlySet<EffectKind> = new Set<EffectKind>(['watch_agent', 'watch_sidecars']);

/**
 * A bottle's effects run on the host it is pinned to: each host has a queue
 * for its effects and one for its lifelong effects (watching an agent and its sidecars). The
 * lifelong ones are apart, served without a small concurrency bound: on the
 * shared queue each running bottle would hold one of its slots for life, and
 * once they were all held no other bottle could launch or stop.
 */
export function hostQueueNames(hostId: string): { effects: string; lifelong: string } {
  return { effects: `effects.${hostId}`, lifelong: `lifelong.${hostId}` };
}

export function isLifelong(kind: EffectKind): boolean {
  return LIFELONG_EFFECTS.has(kind);
}

/** The queue an effect of this kind for a bottle on `hostId` is enqueued on. */
export function effectQueueName(kind: EffectKind, hostId: string): string {
  const names = hostQueueNames(hostId);
  return isLifelong(kind) ? names.lifelong : names.effects;
}
/** BullMQ key prefix; kept apart from the event log's `cb:` keys. */
export const QUEUE_PREFIX = 'cbq';

export const CommandJobSchema = z.object({
  identity: z.string(),
  /** Client-chosen id; the append is skipped if an event with this cause is already in the log. */
  command_id: z.string(),
  event: z.object({ type: z.string(), data: z.record(z.unknown()) }),
  /** A launch's route secrets, sealed to the pinned host's key; never part of the event. */
  sealed_secrets: SealedSecretsSchema.optional(),
});
export type CommandJob = z.infer<typeof CommandJobSchema>;

/** BullMQ forbids `:` in custom ids; identities never contain one, kinds use `_`. */
export function effectJobId(req: Pick<EffectRequest, 'identity' | 'causedBySeq' | 'kind'>): string {
  return `effect.${req.identity}.${req.causedBySeq}.${req.kind}`;
}
export function commandJobId(identity: string, commandId: string): string {
  return `command.${identity}.${commandId}`;
}

/** Long effects (watching an agent) run for hours; all others are retried on transient faults. */
export const EFFECT_ATTEMPTS = 5;
export const RETRY_BACKOFF = { type: 'exponential' as const, delay: 500 };

/**
 * An effect whose Docker daemon does not answer is not retried on the schedule above (its tries would
 * be spent in seconds while the daemon restarts): it is delayed, without spending a try, until the
 * daemon answers, for this long at most before it fails for good.
 */
export const DAEMON_WAIT_BOUND_MS = 10 * 60_000;

/** The delay before the next try while the daemon is away: doubling from a second, a quarter-minute at most. */
export function daemonRetryDelay(waitsSoFar: number): number {
  return Math.min(1000 * 2 ** Math.min(waitsSoFar, 10), 15_000);
}

export function openQueue(connection: ConnectionOptions, name: string = QUEUE_NAME): Queue {
  return new Queue(name, {
    connection,
    prefix: QUEUE_PREFIX,
    defaultJobOptions: {
      attempts: EFFECT_ATTEMPTS,
      backoff: RETRY_BACKOFF,
      // Completed ids stay a day so a duplicate enqueue of the same effect is a no-op.
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  });
}
