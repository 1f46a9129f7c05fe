import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { LifecycleEvent, NewEvent } from '../events/schema.js';
import type { SealedSecrets } from '../shared/sealed-secrets.js';
import { redisTarget, type RedisTarget } from '../shared/redis-target.js';
import { connectRedis } from '../engine/redis.js';
import { openBottleLog, type BottleLog } from '../engine/bottle-log.js';
import { HOST_TASK_JOB, type HostTask } from '../engine/host-tasks.js';
import { ensureRedis } from '../engine/embedded.js';
import { ensureWorker } from './local-worker.js';
import { followUntil } from './follow.js';
import { watchBottleHost } from './host-watch.js';

/**
 * What a CLI command needs to talk to the engine: the event log, the queue,
 * and (for commands that change state) a live worker. Opening a session on
 * the embedded default starts redis-server and a worker when needed.
 */
export interface Session {
  target: RedisTarget;
  redis: Redis;
  log: BottleLog;
  /** Sends a command; a launch's route secrets ride along sealed, outside the event. */
  enqueueCommand(identity: string, event: NewEvent, sealedSecrets?: SealedSecrets): Promise<string>;
  /** Queues a host task for the workers of `host` and waits for its answer (the job's result). */
  runHostTask(task: HostTask, host: string, timeoutMs: number): Promise<unknown>;
  /** Starts a local worker when none is alive; for commands that open with needWorker false and decide later. */
  ensureWorker(say?: (line: string) => void): Promise<void>;
  /**
   * Follows a bottle as followUntil does, checking meanwhile that a live worker serves its host (see
   * watchBottleHost): it never waits silently. With `detach`, it gives up (undefined) when none does.
   */
  follow(
    identity: string,
    afterSeq: number,
    onEvent: (ev: LifecycleEvent) => void,
    until: (ev: LifecycleEvent) => boolean,
    opts?: FollowOptions,
  ): Promise<LifecycleEvent | undefined>;
  close(): Promise<void>;
}

export interface FollowOptions {
  /** Where notes about the bottle's host go (the session's `say` by default). */
  say?: (line: string) => void;
  detach?: boolean;
  signal?: AbortSignal;
}

export async function openSession(opts: {
  needWorker: boolean;
  say?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}): Promise<Session> {
  const env = opts.env ?? process.env;
  const target = redisTarget(env);
  await ensureRedis(target, opts.say);
  const redis = connectRedis(target);
  // The queue (and its connection) is opened only by commands that enqueue: read-only commands must
  // leave Redis exactly as they found it, and BullMQ, about half the code a start runs, loads only then.
  let queue: Promise<{ conn: Redis; queue: Queue }> | undefined;
  const openCommandQueue = () =>
    (queue ??= import('../engine/queues.js').then(({ openQueue }) => {
      const conn = connectRedis(target);
      return { conn, queue: openQueue(conn) };
    }));
  if (opts.needWorker) {
    // A command that needs a worker enqueues: its queue connection comes up while the worker is checked.
    const opening = openCommandQueue();
    try {
      await Promise.all([opening, ensureWorker(target, redis, opts.say)]);
    } catch (err) {
      const opened = await opening.catch(() => undefined);
      await opened?.queue.close().catch(() => undefined);
      opened?.conn.disconnect();
      redis.disconnect();
      throw err;
    }
  }
  const log = openBottleLog(redis);
  return {
    target,
    redis,
    log,
    async enqueueCommand(identity, event, sealedSecrets) {
      const [{ queue: commandQueue }, { enqueueCommand }] = await Promise.all([
        openCommandQueue(),
        import('../engine/commands.js'),
      ]);
      return enqueueCommand(commandQueue, identity, event, sealedSecrets);
    },
    async runHostTask(task, host, timeoutMs) {
      const { conn } = await openCommandQueue();
      const { QueueEvents } = await import('bullmq');
      const { QUEUE_PREFIX, hostQueueNames, openQueue } = await import('../engine/queues.js');
      // A host task is about one host's daemon and disk: only that host's workers serve its queue.
      const name = hostQueueNames(host).effects;
      const taskQueue = openQueue(conn, name);
      const eventsConn = connectRedis(target);
      const events = new QueueEvents(name, { connection: eventsConn, prefix: QUEUE_PREFIX, autorun: true });
      try {
        await events.waitUntilReady();
        const job = await taskQueue.add(HOST_TASK_JOB, task, { attempts: 1 });
        return (await job.waitUntilFinished(events, timeoutMs)) as unknown;
      } finally {
        await events.close();
        await taskQueue.close();
        eventsConn.disconnect();
      }
    },
    async ensureWorker(say) {
      await ensureWorker(target, redis, say ?? opts.say);
    },
    async follow(identity, afterSeq, onEvent, until, followOpts = {}) {
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      followOpts.signal?.addEventListener('abort', onAbort, { once: true });
      const say = followOpts.say ?? opts.say ?? (() => undefined);
      const giveUp = () => stop.abort();
      const watching = watchBottleHost(
        { target, redis, log, identity, say, detach: followOpts.detach ?? false, giveUp },
        stop.signal,
      );
      try {
        return await followUntil(log, identity, afterSeq, onEvent, until, stop.signal);
      } finally {
        followOpts.signal?.removeEventListener('abort', onAbort);
        stop.abort();
        await watching;
      }
    },
    async close() {
      const opened = await queue?.catch(() => undefined);
      if (opened) {
        await opened.queue.close();
        opened.conn.disconnect();
      }
      redis.disconnect();
    },
  };
}

/**
 * Sends a command to a bottle that already exists (starting a local worker when none runs) and
 * follows its log from there until `settled`; returns the event that settled it.
 */
export async function commandAndFollow(
  session: Session,
  identity: string,
  command: NewEvent,
  onEvent: (ev: LifecycleEvent) => void,
  settled: (ev: LifecycleEvent) => boolean,
  opts: Pick<FollowOptions, 'say' | 'signal'> = {},
): Promise<LifecycleEvent | undefined> {
  await session.ensureWorker(opts.say);
  const after = await session.log.lastSeq(identity);
  await session.enqueueCommand(identity, command);
  return session.follow(identity, after, onEvent, settled, opts);
}
