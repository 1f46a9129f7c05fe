import type { Redis } from 'ioredis';

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
  /** The Docker host it serves, by the id it was given (`bottle worker --host`); its machine's name by default. */
  hostId: string;
  /** The Docker engine's own id ('' when the worker did not say). */
  engineId: string;
  /** Bottles it is watching now, and how many it can. */
  bottles: number;
  capacity: number;
  /** The host's X25519 public key, which the CLI seals route secrets to ('' when the worker did not say). */
  publicKey: string;
}

/** A host id: what `--host` accepts, and how heartbeats name the host. */
export const HOST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

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
        hostId: h.host_id || h.host,
        engineId: h.engine_id ?? '',
        bottles: Number(h.bottles ?? 0) || 0,
        capacity: Number(h.capacity ?? 0) || 0,
        publicKey: h.public_key ?? '',
      });
    }
  }
  return beats;
}
