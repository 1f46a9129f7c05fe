export { bottleMachine } from './bottle.machine.js';
export type { EffectIntent } from './effect-requests.js';
export {
  attentionOf,
  ATTENTION_KINDS,
  isNewAttention,
  needsYou,
  type Attention,
  type AttentionKind,
} from './attention.js';
export {
  AgentAttentionSchema,
  BottleContextSchema,
  BottleStateSchema,
  MACHINE_VERSION,
  NetworkLayoutSchema,
  parseBottleState,
  PendingCapabilitySchema,
  type AgentAttention,
  type BottleContext,
  type BottleState,
  type NetworkLayout,
  type PendingCapability,
  type PreserveReason,
} from './context.js';
export {
  EFFECT_KINDS,
  EFFECTS,
  InvalidEffectRequestError,
  parseEffectRequest,
  type EffectKind,
  type EffectOutcome,
  type EffectParams,
  type EffectRequest,
  type ObservationEvent,
} from './effects.js';
export {
  foldEvent,
  foldEvents,
  foldHistory,
  HistoryGapError,
  initialBottleState,
  pendingEffects,
  statesEqual,
  type FoldResult,
} from './fold.js';
export { accepts, bottleStatus, isTerminal, stateName, type Command } from './status.js';
