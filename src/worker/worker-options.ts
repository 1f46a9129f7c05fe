import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EffectHandlers, HostDaemon, HostTaskHandlers } from '../effects/types.js';
import type { HostKeyPair } from '../shared/sealed-secrets.js';

/** What a worker program gives a worker: its connections, its effects and its host's means. */
export interface WorkerOptions {
  /** Opens a fresh connection (BullMQ's worker blocks on its own). */
  connect: () => Redis;
  handlers: EffectHandlers;
  concurrency?: number;
  log?: (line: string) => void;
  /** The runtimes its Docker daemon has registered, published in the heartbeat for the CLI's plans. */
  runtimes?: string[];
  /** The Docker host this worker serves: its id and the engine's, published in the heartbeat. */
  host?: { id: string; engineId: string };
  /** How many lifelong effects (one per running bottle) this worker serves at once. */
  lifelongConcurrency?: number;
  /** Host-wide tasks (cleanup); a worker without them refuses such jobs. */
  hostTasks?: HostTaskHandlers;
  /** Its Docker daemon: effects wait while it is away, and the host is reconciled at start and on its return. */
  daemon?: HostDaemon;
  /** The host's key pair for sealed secrets; by default read from (or created in) the worker's home. */
  hostKeys?: HostKeyPair;
}

export interface RunningWorker {
  worker: Worker;
  close(): Promise<void>;
}
