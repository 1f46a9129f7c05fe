export { bottleMachine, type EffectIntent } from './bottle.machine.js';
export {
  BottleContextSchema,
  BottleStateSchema,
  PendingCapabilitySchema,
  type BottleContext,
  type BottleState,
  type PendingCapability,
} from './context.js';
export { foldEvent, foldHistory, HistoryGapError, initialBottleState, statesEqual, type FoldResult } from './fold.js';
export { bottleStatus, isTerminal } from './status.js';
