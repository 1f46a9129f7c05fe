import { setTimeout as sleep } from 'node:timers/promises';
import { BOTTLES_INDEX_KEY } from '../event-store/keys.js';
import { attentionOf, isNewAttention, stateName, type Attention } from '../machines/index.js';
import type { Session } from './session.js';
import { watchStates } from './state-watch.js';

/** How often the index of bottles is looked at for new ones (a count, one Redis call). */
const INDEX_CHECK_MS = 2000;

export interface RaisedAttention {
  identity: string;
  attention: Attention;
}

/**
 * Every new attention of every bottle in the log, whichever host runs it, as it is raised: follows
 * each bottle's events (one blocking read each) and picks up bottles started meanwhile. An
 * attention already held when the feed starts is not new; cleaned bottles are not followed.
 */
export async function followAttention(
  session: Session,
  onRaised: (raised: RaisedAttention) => void,
  signal: AbortSignal,
): Promise<void> {
  const followed = new Set<string>();
  const follows: Array<Promise<unknown>> = [];
  let indexed = -1;
  while (!signal.aborted) {
    const count = await session.redis.zcard(BOTTLES_INDEX_KEY);
    if (count !== indexed) {
      indexed = count;
      for (const entry of await session.log.listBottles()) {
        if (followed.has(entry.identity)) continue;
        followed.add(entry.identity);
        follows.push(
          watchStates(
            session.log,
            [entry.identity],
            (identity, state, previous) => {
              const now = attentionOf(state);
              if (previous !== undefined && isNewAttention(attentionOf(previous), now))
                onRaised({ identity, attention: now });
              // A cleaned bottle is never resumed: its follow ends.
              return stateName(state) === 'cleaned';
            },
            signal,
          ),
        );
      }
    }
    await sleep(INDEX_CHECK_MS, undefined, { signal }).catch(() => undefined);
  }
  await Promise.allSettled(follows);
}
