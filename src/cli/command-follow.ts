import type { LifecycleEvent, NewEvent } from '../events/schema.js';
import type { FollowOptions, Session } from './session.js';

/**
 * Sends a command to a bottle that already exists (starting a local worker when none runs) and
 * follows its log from there until `settled`; returns the event that settled it. Types only from
 * the session: the dashboard's ES module bundle imports this, and must not load Redis's client.
 */
export async function commandAndFollow(
  session: Session,
  identity: string,
  command: NewEvent,
  onEvent: (ev: LifecycleEvent) => void,
  settled: (ev: LifecycleEvent) => boolean,
  opts: Pick<FollowOptions, 'say' | 'signal'> = {},
): Promise<LifecycleEvent | undefined> {
  await session.ensureWorker(opts.say);
  const after = await session.log.lastSeq(identity);
  await session.enqueueCommand(identity, command);
  return session.follow(identity, after, onEvent, settled, opts);
}
