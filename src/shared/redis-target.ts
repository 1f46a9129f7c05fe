import { join } from 'node:path';
import { bottleHome } from './paths.js';

/**
 * Where Redis is: `REDIS_URL` when set, else the embedded default, a
 * `redis-server` on a unix socket under the state directory that the CLI
 * starts on demand (see src/cli/embedded.ts).
 */
export type RedisTarget = { kind: 'url'; url: string } | { kind: 'embedded'; socket: string; dir: string };

export function redisTarget(env: NodeJS.ProcessEnv = process.env): RedisTarget {
  if (env.REDIS_URL) return { kind: 'url', url: env.REDIS_URL };
  const dir = join(bottleHome(env), 'redis');
  return { kind: 'embedded', socket: join(dir, 'redis.sock'), dir };
}

export function describeRedisTarget(t: RedisTarget): string {
  return t.kind === 'url' ? t.url.replace(/\/\/[^@/]*@/, '//***@') : `unix:${t.socket}`;
}
