import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeFailure } from '../shared/errors.js';
import { bottleHome } from '../shared/paths.js';
import { describeRedisTarget, type RedisTarget } from '../shared/redis-target.js';
import { probeRedis } from './redis.js';

/**
 * The embedded default: with no REDIS_URL, one machine needs no
 * configuration. The CLI starts a redis-server on a unix socket under the
 * state directory (append-only file, fsynced on every write) and a detached local worker, and
 * reuses both next time. Their pids are written next to their logs so a
 * caller (tests, `bottle doctor`) can stop exactly what was started.
 */
export async function ensureRedis(target: RedisTarget, say: (line: string) => void = () => undefined): Promise<void> {
  if (await pingRedis(target)) return;
  if (target.kind === 'url') {
    throw new RuntimeFailure(
      `Redis at ${describeRedisTarget(target)} is not reachable; ` +
        'check REDIS_URL or unset it to use the embedded default',
    );
  }
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const binary = which.stdout.trim();
  if (!binary)
    throw new RuntimeFailure('redis-server is not installed; run scripts/setup-env.sh (as root) or set REDIS_URL');
  mkdirSync(target.dir, { recursive: true, mode: 0o700 });
  say(`starting embedded redis-server (${target.socket})`);
  const started = spawnSync(
    binary,
    [
      '--port',
      '0',
      '--unixsocket',
      target.socket,
      '--unixsocketperm',
      '700',
      '--dir',
      target.dir,
      '--appendonly',
      'yes',
      // Each write is on disk before Redis replies, so an event the worker saw appended survives
      // a crash of redis-server or of the machine (README, Durability).
      '--appendfsync',
      'always',
      '--daemonize',
      'yes',
      '--pidfile',
      join(target.dir, 'redis.pid'),
      '--logfile',
      join(target.dir, 'redis.log'),
    ],
    { encoding: 'utf8' },
  );
  if (started.status !== 0)
    throw new RuntimeFailure(`redis-server failed to start: ${started.stderr.trim() || started.stdout.trim()}`);
  for (let i = 0; i < 100; i++) {
    if (await pingRedis(target)) return;
    await sleep(50);
  }
  throw new RuntimeFailure(
    `embedded redis-server did not answer on ${target.socket}; see ${join(target.dir, 'redis.log')}`,
  );
}

export async function pingRedis(target: RedisTarget): Promise<boolean> {
  if (target.kind === 'embedded' && !existsSync(target.socket)) return false;
  const probe = probeRedis(target);
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export function workerPaths(env: NodeJS.ProcessEnv = process.env) {
  const dir = join(bottleHome(env), 'worker');
  return { dir, log: join(dir, 'worker.log'), pid: join(dir, 'worker.pid') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
