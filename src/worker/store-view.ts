import type { EventStoreView } from '../effects/types.js';
import { isTerminal, stateName, type BottleState } from '../machines/index.js';
import { BottlePlanSchema } from '../plan/schema.js';
import type { BottleLog } from '../engine/bottle-log.js';

/** Bottles whose images nothing will use again. */
const GONE_STATES: ReadonlySet<string> = new Set(['cleaned', 'discarded']);

/** What host tasks and leftover removal may ask of this worker's event store, folded from its logs. */
export function eventStoreView(
  id: string,
  log: Pick<BottleLog, 'listBottles'>,
  engine: { currentState(identity: string): Promise<{ state: BottleState; lastSeq: number }> },
): EventStoreView {
  return {
    id,
    isLive: async (identity) => {
      const { state, lastSeq } = await engine.currentState(identity);
      // A bottle this store has no events for is not live here.
      return lastSeq > 0 && !isTerminal(state) && stateName(state) !== 'preserved';
    },
    imagesInUse: async (except) => {
      const tags = new Set<string>();
      for (const entry of await log.listBottles()) {
        if (entry.identity === except) continue;
        const { state } = await engine.currentState(entry.identity);
        if (GONE_STATES.has(stateName(state))) continue;
        const plan = BottlePlanSchema.safeParse(state.context.plan);
        if (plan.success) [plan.data.image.tag, plan.data.gateway_image.tag].forEach((tag) => tags.add(tag));
      }
      return [...tags];
    },
  };
}
