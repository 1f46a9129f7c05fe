import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { buildId } from '../shared/build-id.js';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_PREFIX, HEARTBEAT_STALE_MS } from '../engine/workers.js';

/** What a worker says about the host it serves, beside its liveness. */
export interface HostBeat {
  hostId: string;
  engineId: string;
  runtimes: readonly string[];
  capacity: number;
  publicKey: string;
  /** Read at every beat. */
  bottles: () => number;
}

export function startHeartbeat(redis: Redis, host: HostBeat, now: () => number = Date.now): () => Promise<void> {
  const key = `${HEARTBEAT_PREFIX}${hostname()}:${process.pid}`;
  const started = now();
  const beat = () =>
    redis
      .multi()
      .hset(key, {
        host: hostname(),
        pid: String(process.pid),
        beat: String(now()),
        started: String(started),
        build: buildId(),
        runtimes: host.runtimes.join(','),
        host_id: host.hostId,
        engine_id: host.engineId,
        bottles: String(host.bottles()),
        capacity: String(host.capacity),
        public_key: host.publicKey,
      })
      .pexpire(key, HEARTBEAT_STALE_MS * 2)
      .exec()
      .catch(() => undefined);
  void beat();
  const timer = setInterval(() => void beat(), HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.del(key).catch(() => undefined);
  };
}
