import { removeBottleResources } from './docker/remove-bottle.js';
import { removeState } from './state.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** cleanup: after a clean exit, the Docker resources and the state both go. */
export const cleanup =
  ({ docker }: EffectDeps): EffectHandler<'cleanup'> =>
  async (_req, ctx) => {
    // First, so a teardown that fails half-way still leaves no secret behind.
    await ctx.secrets.discard();
    await removeBottleResources(docker, ctx.identity);
    await removeState(ctx.identity);
    return [{ type: 'bottle.cleaned', data: {} }];
  };
