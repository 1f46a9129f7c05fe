import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAME, QUEUE_PREFIX, hostQueueNames } from '../engine/queues.js';

/**
 * Lock settings: a SIGKILLed worker's job is re-run by another worker (or the
 * restarted one) after the lock lapses; short values make that fast, while the
 * lock is renewed every lockDuration/2 for long effects such as watch_agent.
 */
const LOCK_DURATION_MS = 10_000;
const STALLED_INTERVAL_MS = 5_000;
const MAX_STALLED_COUNT = 20;

export interface JobWorkers {
  /** The worker of the shared queue (commands and host tasks). */
  commands: Worker;
  close(): Promise<void>;
}

/**
 * The three BullMQ workers of one host, each on its own connection (a
 * worker blocks on it): commands and host tasks come from any CLI; effects,
 * and lifelong effects (one per watched bottle), only for bottles pinned to
 * this host. Resolves once all three take jobs.
 */
export async function startJobWorkers(opts: {
  connect: () => Redis;
  hostId: string;
  process: (job: Job, token?: string) => Promise<unknown>;
  concurrency: number;
  lifelongConcurrency: number;
  say: (line: string) => void;
}): Promise<JobWorkers> {
  const workerFor = (name: string, concurrency: number) => {
    const w = new Worker(name, opts.process, {
      connection: opts.connect(),
      prefix: QUEUE_PREFIX,
      concurrency,
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      maxStalledCount: MAX_STALLED_COUNT,
      autorun: true,
    });
    w.on('error', (err) => opts.say(`worker error (${name}): ${err.message}`));
    return w;
  };
  const hostQueues = hostQueueNames(opts.hostId);
  const workers = [
    workerFor(QUEUE_NAME, opts.concurrency),
    workerFor(hostQueues.effects, opts.concurrency),
    workerFor(hostQueues.lifelong, opts.lifelongConcurrency),
  ];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    commands: workers[0],
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
