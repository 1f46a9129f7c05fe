import type { Redis } from 'ioredis';
import type { LaunchSecrets } from '../../src/effects/types.js';

/** A launch's secrets held in memory, as the worker's opened blob would be; says when an effect dropped them. */
export function heldLaunchSecrets(secrets?: Record<string, string>): LaunchSecrets & { discarded: boolean } {
  let held = secrets;
  const access = {
    discarded: false,
    open: async () => held,
    discard: async () => {
      held = undefined;
      access.discarded = true;
    },
  };
  return access;
}

/** Every key of a Redis whose value (of any type) contains `needle` in plaintext. */
export async function redisKeysHolding(redis: Redis, needle: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      if ((await valueText(redis, key)).includes(needle)) found.push(key);
    }
  } while (cursor !== '0');
  return found;
}

async function valueText(redis: Redis, key: string): Promise<string> {
  switch (await redis.type(key)) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await redis.hgetall(key));
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'set':
      return JSON.stringify(await redis.smembers(key));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, 0, -1));
    case 'stream':
      return JSON.stringify(await redis.xrange(key, '-', '+'));
    default:
      return '';
  }
}
