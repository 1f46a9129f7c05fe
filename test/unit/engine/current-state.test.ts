import { describe, expect, it } from 'vitest';
import { foldEvents, initialBottleState } from '../../../src/machines/index.js';
import { currentState, type BottleLog } from '../../../src/engine/bottle-log.js';
import { history, preLaunchSteps } from '../../golden/fixtures.js';

describe('currentState', () => {
  it('returns a state and a last seq that belong together when an append lands between its reads', async () => {
    const identity = 'dev-a1b2c';
    const events = history(preLaunchSteps(identity));
    const behind = events.length - 2;
    // lastSeq is read first; by the time the cache and the stream are read, two more events are in.
    const log = {
      lastSeq: async () => behind,
      liveState: async () => foldEvents(initialBottleState(identity), events),
      read: async () => events,
    } as unknown as BottleLog;
    const { state, lastSeq } = await currentState(log, identity);
    expect(lastSeq).toBe(events.length);
    expect(state.seq).toBe(lastSeq);
  });
});
