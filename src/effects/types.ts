import type { BottlePlan } from '../plan/schema.js';

/**
 * The one narrow interface between the worker and the outside world. The
 * machine requests effects by kind; the worker looks up the handler and turns
 * its result into lifecycle events. Handlers are idempotent: deterministic
 * names, inspect before create, removal tolerates "already gone".
 */
export const EFFECT_KINDS = [
  'prepare_state', // state dir, metadata.json, clear .preserve -> bottle.prepared
  'build_image', // agent + gateway images -> image.built
  'create_networks', // internal + egress networks, host guard -> network.created
  'start_gateway', // gateway container on both networks -> gateway.started
  'start_agent', // hardened agent container, provisioning -> agent.started
  'watch_agent', // container wait + gateway decision stream -> egress.* ..., agent.exited
  'stop_agent', // SIGTERM then SIGKILL the agent -> (agent.exited arrives via watch_agent)
  'snapshot_transcript', // /home/node/.claude -> state/<id>/transcript -> transcript.snapshotted
  'preserve', // .preserve marker + teardown of Docker resources -> bottle.preserved
  'cleanup', // teardown of Docker resources + state dir removed -> bottle.cleaned
  'apply_capability', // per-bottle Dockerfile written, snapshot, marker, teardown -> bottle.preserved
  'teardown_failed', // teardown after a permanent failure, state kept -> bottle.failed
] as const;
export type EffectKind = (typeof EFFECT_KINDS)[number];

export interface EffectRequest {
  kind: EffectKind;
  identity: string;
  /** seq of the event whose fold requested this effect; with kind it makes the job id. */
  causedBySeq: number;
  params: Record<string, unknown>;
}

/** An event not yet in the log: the log assigns seq and `at`. */
export interface NewEvent {
  type: string;
  data: Record<string, unknown>;
}

export interface EffectContext {
  identity: string;
  plan: BottlePlan;
  /** Appends observation events (egress decisions) while a long effect runs. */
  observe(events: NewEvent[]): Promise<void>;
  /** Human progress (image build lines); shown by a following CLI, not stored as events. */
  progress(line: string): void;
  /** Aborted on worker shutdown; long effects return early and are retried elsewhere. */
  signal: AbortSignal;
  /** Highest egress decision number already recorded, so a retried watcher skips those. */
  lastEgressDecision: number;
}

export type EffectHandler = (req: EffectRequest, ctx: EffectContext) => Promise<NewEvent[]>;

/** Thrown by a handler when retrying cannot help (bad Dockerfile, missing secret). */
export class PermanentEffectError extends Error {
  constructor(message: string, readonly detail?: string) {
    super(message);
    this.name = 'PermanentEffectError';
  }
}
