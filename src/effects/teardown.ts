import { resumeHint } from './capability.js';
import { removeBottleResources } from './docker/teardown.js';
import { markPreserved, removeState } from './state.js';
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
