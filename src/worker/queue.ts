import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import type { EffectRequest } from '../machines/effects.js';

/** One queue carries both commands (from the CLI) and effects (requested by the machine). */
export const QUEUE_NAME = 'bottle';
/** BullMQ key prefix; kept apart from the event log's `cb:` keys. */
export const QUEUE_PREFIX = 'cbq';

export const CommandJobSchema = z.object({
  identity: z.string(),
  /** Client-chosen id; the append is skipped if an event with this cause is already in the log. */
  command_id: z.string(),
  event: z.object({ type: z.string(), data: z.record(z.unknown()) }),
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

export function openQueue(connection: ConnectionOptions): Queue {
  return new Queue(QUEUE_NAME, {
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
