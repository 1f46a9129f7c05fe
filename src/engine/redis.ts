import { Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../shared/redis-target.js';

/**
 * ioredis connections for one Redis target. BullMQ needs
 * `maxRetriesPerRequest: null` on the connections it blocks on; short-lived
 * CLI probes want the opposite (fail fast, never hang).
 */
export function connectRedis(target: RedisTarget, opts: RedisOptions = {}): Redis {
  const base: RedisOptions = { lazyConnect: false, maxRetriesPerRequest: null, enableReadyCheck: true, ...opts };
  const redis =
    target.kind === 'embedded'
      ? new Redis({ ...base, path: target.socket })
      : target.url.startsWith('unix://')
        ? new Redis({ ...base, path: target.url.slice('unix://'.length) })
        : new Redis(target.url, base);
  // ioredis reconnects by itself; without a listener it prints every failed attempt.
  redis.on('error', () => undefined);
  return redis;
}

/** A connection for a quick question: no retries, short timeouts. */
export function probeRedis(target: RedisTarget): Redis {
  return connectRedis(target, {
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: () => null,
    enableOfflineQueue: true,
    lazyConnect: true,
  });
}
