import { statusOf } from './docker/client.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** stop_agent: SIGTERM, then SIGKILL after a grace period; the exit is reported by watch_agent. */
export const stopAgent =
  ({ docker }: EffectDeps): EffectHandler<'stop_agent'> =>
  async (_req, ctx) => {
    try {
      await docker.getContainer(ctx.plan.containers.agent).stop({ t: 10 });
    } catch (err) {
      // 304: already stopped; 404: already removed.
      if (statusOf(err) !== 304 && statusOf(err) !== 404) throw err;
    }
    return [];
  };
