import type { BottleLog } from '../engine/bottle-log.js';
import { currentState } from '../engine/bottle-log.js';
import { foldEvent, type BottleState } from '../machines/index.js';
import { followUntil } from './follow.js';

/**
 * Follows bottles' states as their events arrive (one blocking read per bottle, no polling): calls
 * `onState` with each bottle's current state first, then again after every event, until it returns
 * true for one of them (resolves with that identity) or the signal aborts (undefined).
 */
export async function watchStates(
  log: BottleLog,
  identities: readonly string[],
  onState: (identity: string, state: BottleState, previous: BottleState | undefined) => boolean,
  signal: AbortSignal,
): Promise<string | undefined> {
  const done = new AbortController();
  const stop = () => done.abort();
  signal.addEventListener('abort', stop, { once: true });
  let found: string | undefined;
  const follow = async (identity: string) => {
    const { state: first, lastSeq } = await currentState(log, identity);
    let state = first;
    if (onState(identity, state, undefined)) return identity;
    const ended = await followUntil(
      log,
      identity,
      lastSeq,
      () => undefined,
      (ev) => {
        const previous = state;
        state = foldEvent(state, ev).state;
        return onState(identity, state, previous);
      },
      done.signal,
    );
    return ended ? identity : undefined;
  };
  try {
    await Promise.all(
      identities.map(async (identity) => {
        const hit = await follow(identity);
        if (hit !== undefined && found === undefined) {
          found = hit;
          done.abort();
        }
      }),
    );
    return found;
  } finally {
    signal.removeEventListener('abort', stop);
    done.abort();
  }
}
