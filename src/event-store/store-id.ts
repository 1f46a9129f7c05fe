import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A stable id for one event store, minted by whichever client asks first. */
export const STORE_ID_KEY = 'cb:store-id';

export async function storeId(redis: Redis): Promise<string> {
  await redis.set(STORE_ID_KEY, randomUUID().slice(0, 12), 'NX');
  const id = await redis.get(STORE_ID_KEY);
  if (!id) throw new Error('could not read the event store id');
  return id;
}
