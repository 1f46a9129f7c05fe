import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { buildId } from '../shared/build-id.js';

/** A worker is alive while its heartbeat key is fresh; `doctor` and the CLI read these. */
export const HEARTBEAT_PREFIX = 'cb:worker:';
export const HEARTBEAT_INTERVAL_MS = 3000;
export const HEARTBEAT_STALE_MS = 15000;

export interface WorkerBeat {
  key: string;
  host: string;
  pid: number;
  beat: number;
  started: number;
  /** The claude-bottle build the worker runs ('' for workers from before builds were published). */
  build: string;
  /** The container runtimes its Docker daemon has registered (empty when the worker did not say). */
  runtimes: string[];
}

export function startHeartbeat(
  redis: Redis,
  now: () => number = Date.now,
  runtimes: readonly string[] = [],
): () => Promise<void> {
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
        runtimes: runtimes.join(','),
      })
      .pexpire(key, HEARTBEAT_STALE_MS * 2)
      .exec()
      .catch(() => undefined);
  void beat();
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.del(key).catch(() => undefined);
  };
}

export async function liveWorkers(redis: Redis, now: () => number = Date.now): Promise<WorkerBeat[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${HEARTBEAT_PREFIX}*`, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const beats: WorkerBeat[] = [];
  for (const key of keys) {
    const h = await redis.hgetall(key);
    const beat = Number(h.beat);
    if (Number.isFinite(beat) && now() - beat <= HEARTBEAT_STALE_MS) {
      const runtimes = h.runtimes ? h.runtimes.split(',') : [];
      beats.push({
        key,
        host: h.host,
        pid: Number(h.pid),
        beat,
        started: Number(h.started),
        build: h.build ?? '',
        runtimes,
      });
    }
  }
  return beats;
}
