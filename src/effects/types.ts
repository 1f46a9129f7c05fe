import type { EffectKind, EffectOutcome, EffectRequest, ObservationEvent } from '../machines/effects.js';
import type { BottlePlan } from '../plan/schema.js';
import type { LifecycleEvent } from '../events/schema.js';
import type { UploadedSources } from '../blobs/materialize.js';
import type { CleanupReport, CleanupTask } from '../engine/host-tasks.js';

/**
 * The one narrow interface between the worker and the outside world. The
 * machine requests effects by kind (src/machines/effects.ts says which, with
 * what params, reporting which events); the worker looks up the handler and
 * appends what it returns. Handlers are idempotent: deterministic names,
 * inspect before create, removal tolerates "already gone".
 */
export interface EffectContext {
  identity: string;
  plan: BottlePlan;
  /** Appends observation events (egress decisions, capability requests) while a long effect runs. */
  observe(events: ObservationEvent[]): Promise<void>;
  /** Human progress (image build lines); shown by a following CLI, not stored as events. */
  progress(line: string): void;
  /** Aborted on worker shutdown; long effects return early and are retried elsewhere. */
  signal: AbortSignal;
  /** Highest egress decision number already recorded, so a retried watcher skips those. */
  lastEgressDecision: number;
  /** The bottle's logged event at `seq` (a capability request's Dockerfile is read from there). */
  loggedEvent?(seq: number): Promise<LifecycleEvent | undefined>;
  /** The route secrets the CLI sealed for this launch, opened in memory with this host's key. */
  secrets: LaunchSecrets;
  /** What the plan takes from the CLI's machine (plan.uploads), unpacked here for the effect that reads it. */
  uploads: UploadedSources;
  /** The worker's one watch on its Docker daemon, shared by every effect it runs; none when it has no daemon. */
  daemon?: DaemonLiveness;
  /** The image tags other bottles still use (live, preserved or failed), from the event log: `discard` keeps them. */
  imagesOfOtherBottles?(): Promise<string[]>;
}

export interface DaemonLiveness {
  /**
   * Rejects once the daemon stops answering after this call, and never settles
   * while it answers; aborting `stop` ends the listening.
   */
  lost(stop: AbortSignal): Promise<never>;
}

export interface LaunchSecrets {
  /** Undefined when the launch brought none, or a gateway already took them. */
  open(): Promise<Record<string, string> | undefined>;
  /** Every way out of a launch drops them: once the gateway holds them, or when the launch ends without it. */
  discard(): Promise<void>;
}

export type EffectHandler<K extends EffectKind> = (
  req: EffectRequest<K>,
  ctx: EffectContext,
) => Promise<EffectOutcome<K>[]>;

export type EffectHandlers = { [K in EffectKind]: EffectHandler<K> };

/** Thrown by a handler when retrying cannot help (bad Dockerfile, missing secret). */
export class PermanentEffectError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'PermanentEffectError';
  }
}

/** What the handlers reach the outside world through. */
export interface EffectDeps {
  docker: import('dockerode');
  /** The worker's own log: what belongs to no single bottle (the build fetches of shared images). */
  log?: (line: string) => void;
  /** Extra roots (PEM) this worker's gateways trust upstream, next to the system's (CLAUDE_BOTTLE_UPSTREAM_CA). */
  upstreamCa?: string;
}

/** What a host task may ask of the event store it serves. */
export interface EventStoreView {
  /** The store's id: Docker resources are labelled with it, and only this store's are judged. */
  id: string;
  /** Whether a bottle is live (launching, running, stopping) by its event log. */
  isLive(identity: string): Promise<boolean>;
  /** The image tags of every bottle that is live or kept for a resume (preserved or failed), but `except`. */
  imagesInUse(except?: string): Promise<string[]>;
}

/** What a worker runs host tasks with; the effects layer provides it. */
export interface HostTaskHandlers {
  cleanup(task: CleanupTask, store: EventStoreView): Promise<CleanupReport>;
}

/** Docker resources removed because their bottle is gone from this store, or ended. */
export interface LeftoverReport {
  containers: string[];
  networks: string[];
}

/** The Docker daemon a worker serves, as its recovery needs it; the effects layer provides it. */
export interface HostDaemon {
  /** Whether the daemon answers now. */
  reachable(): Promise<boolean>;
  /** Removes the resources labelled for this store whose bottle is not live here. */
  removeLeftovers(store: EventStoreView): Promise<LeftoverReport>;
}
