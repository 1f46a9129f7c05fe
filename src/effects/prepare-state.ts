import { prepareStateFolder } from './state.js';
import type { EffectHandler } from './types.js';

/** prepare_state: the state folder and this run's metadata. */
export const prepareState: EffectHandler<'prepare_state'> = async (_req, ctx) => [
  { type: 'bottle.prepared', data: { state_dir: await prepareStateFolder(ctx.identity, ctx.plan) } },
];
