import { prepareState } from './state.js';
import type { EffectHandler } from './types.js';

/** prepare_state: the state folder and this run's metadata. */
export const prepare: EffectHandler<'prepare_state'> = async (_req, ctx) => [
  { type: 'bottle.prepared', data: { state_dir: await prepareState(ctx.identity, ctx.plan) } },
];
