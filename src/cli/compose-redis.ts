import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bottleHome } from '../shared/paths.js';
import type { RedisTarget } from '../shared/redis-target.js';

/**
 * The compose deployment's Redis requires a password, which its first `up` writes into the state
 * folder (docker-compose.yml, the redis-password service). The CLI is pointed at it through
 * REDIS_URL; the hint reads the file at the shell, so the password itself is never printed.
 */
export function composeRedisPasswordPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(bottleHome(env), 'redis-password');
}

const COMPOSE_DEFAULT_ENDPOINT = '127.0.0.1:6380';

/** Whether a redis:// or rediss:// URL names a password. */
export function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/** `export REDIS_URL=…` for the compose Redis at the target's address (or the compose default). */
export function composeRedisUrlHint(target: RedisTarget, env: NodeJS.ProcessEnv = process.env): string {
  let scheme = 'redis';
  let endpoint = COMPOSE_DEFAULT_ENDPOINT;
  if (target.kind === 'url' && /^rediss?:\/\//.test(target.url)) {
    const url = new URL(target.url);
    scheme = url.protocol.slice(0, -1);
    endpoint = url.host || endpoint;
  }
  return `export REDIS_URL="${scheme}://:$(cat ${composeRedisPasswordPath(env)})@${endpoint}"`;
}

/** The doctor's line about the compose password, or nothing when this state folder has none. */
export function composePasswordCheck(
  target: RedisTarget,
  env: NodeJS.ProcessEnv = process.env,
): { status: 'ok' | 'warn'; what: string; fix?: string } | undefined {
  const path = composeRedisPasswordPath(env);
  if (!existsSync(path)) return undefined;
  if (target.kind === 'url' && urlHasPassword(target.url)) {
    return { status: 'ok', what: `REDIS_URL carries a password (the compose Redis's is in ${path})` };
  }
  return {
    status: 'warn',
    what:
      `the compose Redis requires the password in ${path}; ` +
      (target.kind === 'url' ? 'REDIS_URL does not carry it' : 'REDIS_URL is not set, so the embedded Redis is used'),
    fix: composeRedisUrlHint(target, env),
  };
}

/** Whether a Redis error says the password is missing or wrong. */
export const isAuthRefusal = (message: string) => /NOAUTH|WRONGPASS|invalid password|Authentication/i.test(message);
