import { z } from 'zod';
import { BottlePlanSchema } from '../plan/schema.js';
import { EFFECT_KINDS } from '../effects/types.js';

/**
 * What the lifecycle machine remembers about one bottle. Plain JSON only: the
 * worker caches the folded state in Redis and `bottle replay` compares it
 * with a fresh fold, so everything here must round-trip through JSON.
 */
export const PendingCapabilitySchema = z.object({
  request_id: z.string(),
  kind: z.enum(['egress', 'dockerfile']),
  host: z.string().optional(),
  port: z.number().optional(),
  dockerfile: z.string().optional(),
  reason: z.string(),
  /** seq of the capability.requested event. */
  requested_seq: z.number(),
});
export type PendingCapability = z.infer<typeof PendingCapabilitySchema>;

export const BottleContextSchema = z.object({
  identity: z.string(),
  /** The plan of the current run: from start, replaced by each resume. */
  plan: BottlePlanSchema.nullable(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  stopRequested: z.boolean(),
  stopRequestedBy: z.string().nullable(),
  /** The one request the operator decides next (approve/deny name it). */
  pendingCapability: PendingCapabilitySchema.nullable(),
  /**
   * Requests made while one was pending, oldest first; a denial hands the turn
   * to the next. Absent from states cached before queuing existed.
   */
  queuedCapabilities: z.array(PendingCapabilitySchema).default([]),
  resumes: z.number(),
  /** The latest effect.failed, transient or not; kept for status output and diagnosis. */
  lastError: z
    .object({
      effect: z.enum(EFFECT_KINDS),
      error: z.string(),
      attempt: z.number(),
      permanent: z.boolean(),
      seq: z.number(),
    })
    .nullable(),
  preservedReason: z.enum(['crash', 'signal', 'stopped', 'capability', 'failure']).nullable(),
  /** Highest gateway decision number recorded this run, so a retried watcher skips those. */
  lastEgressDecision: z.number(),
  /** seq of the last folded event (observations included). */
  seq: z.number(),
});
export type BottleContext = z.infer<typeof BottleContextSchema>;

export const BottleStateSchema = z.object({
  value: z.string(),
  context: BottleContextSchema,
  seq: z.number().int().nonnegative(),
});
/** A plain, serializable snapshot of one bottle's lifecycle. */
export type BottleState = z.infer<typeof BottleStateSchema>;

export function initialContext(identity: string): BottleContext {
  return {
    identity,
    plan: null,
    exitCode: null,
    signal: null,
    stopRequested: false,
    stopRequestedBy: null,
    pendingCapability: null,
    queuedCapabilities: [],
    resumes: 0,
    lastError: null,
    preservedReason: null,
    lastEgressDecision: 0,
    seq: 0,
  };
}

/** The per-run fields a resume starts afresh; identity, resumes and history-wide facts stay. */
export function freshRunFields(): Pick<
  BottleContext,
  | 'exitCode'
  | 'signal'
  | 'stopRequested'
  | 'stopRequestedBy'
  | 'pendingCapability'
  | 'queuedCapabilities'
  | 'lastError'
  | 'preservedReason'
  | 'lastEgressDecision'
> {
  return {
    exitCode: null,
    signal: null,
    stopRequested: false,
    stopRequestedBy: null,
    pendingCapability: null,
    // Requests belong to the run that made them; the resumed agent asks again if it still needs them.
    queuedCapabilities: [],
    lastError: null,
    preservedReason: null,
    lastEgressDecision: 0,
  };
}
