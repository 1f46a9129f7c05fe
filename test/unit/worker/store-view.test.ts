import { describe, expect, it } from 'vitest';
import { foldEvents, initialBottleState } from '../../../src/machines/index.js';
import { eventStoreView } from '../../../src/worker/store-view.js';
import { history, launchSteps, preLaunchSteps, samplePlan } from '../../golden/fixtures.js';

/** A store holding these bottles' histories, folded as the worker's engine folds them. */
function storeOf(histories: Record<string, ReturnType<typeof history>>) {
  const log = { listBottles: async () => Object.keys(histories).map((identity) => ({ identity })) };
  const engine = {
    currentState: async (identity: string) => {
      const events = histories[identity] ?? [];
      return { state: foldEvents(initialBottleState(identity), events), lastSeq: events.length };
    },
  };
  return eventStoreView('store-1', log as never, engine);
}

describe("a worker's view of its event store", () => {
  it('holds a launching or running bottle live, and one it has no events for not', async () => {
    const view = storeOf({
      'dev-a1b2c': history(preLaunchSteps('dev-a1b2c')),
      'dev-b2c3d': history(launchSteps('dev-b2c3d')),
    });
    expect(view.id).toBe('store-1');
    expect(await view.isLive('dev-a1b2c')).toBe(true);
    expect(await view.isLive('dev-b2c3d')).toBe(true);
    expect(await view.isLive('dev-zzzzz')).toBe(false);
  });

  it('names the images of every bottle it holds, once each', async () => {
    const view = storeOf({
      'dev-a1b2c': history(preLaunchSteps('dev-a1b2c')),
      'dev-b2c3d': history(launchSteps('dev-b2c3d')),
    });
    const plan = samplePlan();
    expect((await view.imagesInUse()).sort()).toEqual([plan.gateway_image.tag, plan.image.tag].sort());
  });
});
