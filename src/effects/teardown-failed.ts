import { removeBottleResources } from './docker/remove-bottle.js';
import { markPreserved } from './state.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** teardown_failed: after a permanent failure, the Docker resources go and the state stays for a resume. */
export const teardownFailed =
  ({ docker }: EffectDeps): EffectHandler<'teardown_failed'> =>
  async (req, ctx) => {
    // Marker first: if teardown itself fails, the state is still kept for a resume.
    await markPreserved(ctx.identity, 'failure');
    // A launch that failed before its gateway took the secrets must not leave them waiting.
    await ctx.secrets.discard();
    await removeBottleResources(docker, ctx.identity);
    return [{ type: 'bottle.failed', data: { effect: req.params.effect, error: req.params.error } }];
  };
