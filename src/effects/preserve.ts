import { resumeHint } from './apply-capability.js';
import { removeBottleResources } from './docker/remove-bottle.js';
import { markPreserved } from './state.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** preserve: the state kept for a resume, the bottle's Docker resources removed. */
export const preserve =
  ({ docker }: EffectDeps): EffectHandler<'preserve'> =>
  async (req, ctx) => {
    const { reason } = req.params;
    await markPreserved(ctx.identity, reason);
    // Kept state is for a resume, which brings freshly sealed secrets: none of this run's are kept.
    await ctx.secrets.discard();
    await removeBottleResources(docker, ctx.identity);
    return [{ type: 'bottle.preserved', data: { reason, resume_hint: resumeHint(ctx.identity) } }];
  };
