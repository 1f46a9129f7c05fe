import type { Redis } from 'ioredis';
import { EventLog } from '../event-store/log.js';
import { foldEvents, initialBottleState, parseBottleState, type BottleState } from '../machines/index.js';

export type BottleLog = EventLog<BottleState>;

/** The event log, reading cached live states as the lifecycle machine's (a stale cache reads as null). */
export function openBottleLog(redis: Redis): BottleLog {
  return new EventLog(redis, parseBottleState);
}

/** Live state from the cache when it is current, else folded from the log. */
export async function currentState(log: BottleLog, identity: string): Promise<{ state: BottleState; lastSeq: number }> {
  const lastSeq = await log.lastSeq(identity);
  if (lastSeq === 0) return { state: initialBottleState(identity), lastSeq };
  const cached = await log.liveState(identity);
  if (cached && cached.seq === lastSeq) return { state: cached, lastSeq };
  // Another append may have landed since lastSeq was read: the state and its seq come from one read.
  const events = await log.read(identity);
  return { state: foldEvents(initialBottleState(identity), events), lastSeq: events.at(-1)?.seq ?? 0 };
}
