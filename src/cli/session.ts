import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { EventLog } from '../events/log.js';
import { redisTarget, type RedisTarget } from '../shared/redis-target.js';
import { connectRedis } from '../worker/redis.js';
import { commandJobId, openQueue } from '../worker/queue.js';
import type { NewEvent } from '../effects/types.js';
import { ensureRedis, ensureWorker } from './embedded.js';

/**
 * What a CLI command needs to talk to the engine: the event log, the queue,
 * and (for commands that change state) a live worker. Opening a session on
 * the embedded default starts redis-server and a worker when needed.
 */
export interface Session {
  target: RedisTarget;
  redis: Redis;
  log: EventLog;
  enqueueCommand(identity: string, event: NewEvent): Promise<string>;
  /** Starts a local worker when none is alive; for commands that open with needWorker false and decide later. */
  ensureWorker(say?: (line: string) => void): Promise<void>;
  close(): Promise<void>;
}

export async function openSession(opts: { needWorker: boolean; say?: (line: string) => void; env?: NodeJS.ProcessEnv }): Promise<Session> {
  const env = opts.env ?? process.env;
  const target = redisTarget(env);
  await ensureRedis(target, opts.say);
  const redis = connectRedis(target);
  // The queue (and its connection) is opened only by commands that enqueue:
  // read-only commands must leave Redis exactly as they found it.
  let queue: { conn: Redis; queue: Queue } | undefined;
  if (opts.needWorker) await ensureWorker(target, redis, opts.say);
  return {
    target,
    redis,
    log: new EventLog(redis),
    async enqueueCommand(identity, event) {
      if (!queue) {
        const conn = connectRedis(target);
        queue = { conn, queue: openQueue(conn) };
      }
      const commandId = randomUUID();
      await queue.queue.add('command', { identity, command_id: commandId, event }, { jobId: commandJobId(identity, commandId) });
      return commandId;
    },
    async ensureWorker(say) {
      await ensureWorker(target, redis, say ?? opts.say);
    },
    async close() {
      if (queue) {
        await queue.queue.close();
        queue.conn.disconnect();
      }
      redis.disconnect();
    },
  };
}
