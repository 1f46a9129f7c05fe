import type { BottlePlan } from '../plan/schema.js';
import { statusOf } from './docker/client.js';
import { ensureConnected, ensureContainer, startContainer, startedAt } from './docker/containers.js';
import { classifyDockerErrors, requireNetwork } from './errors.js';
import { writePipelockConfig } from './state.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';
import { generatePipelockConfig, PIPELOCK_LISTEN_PORT } from './pipelock/config.js';
import { pipelockContainerSpec } from './pipelock/pipelock-container.js';
import { waitForPipelockReady } from './pipelock/ready.js';

/** The image named in pipelock's own docs; used when the manifest names none. */
export const DEFAULT_PIPELOCK_IMAGE = 'ghcr.io/luckypipewrench/pipelock:latest';

export function usesPipelock(plan: BottlePlan): boolean {
  return plan.egress?.proxy === 'pipelock';
}

export function pipelockImageFor(plan: BottlePlan): string {
  return plan.egress?.pipelock_image ?? DEFAULT_PIPELOCK_IMAGE;
}

/**
 * start_pipelock: pipelock as the bottle's egress hop, next to the gateway
 * (which keeps the credential port). Idempotent like every effect: the config
 * is rewritten from the plan, the container is found or created, connected to
 * the internal network at its fixed address and waited on until it logs its
 * startup line. The image must already be on the daemon: this tool never pulls.
 */
export const startPipelock =
  ({ docker }: EffectDeps): EffectHandler<'start_pipelock'> =>
  async (req, ctx) => {
    const { plan } = ctx;
    const network = requireNetwork(req.params.network);
    const image = pipelockImageFor(plan);
    try {
      await docker.getImage(image).inspect();
    } catch (err) {
      if (statusOf(err) === 404) {
        throw new PermanentEffectError(
          `pipelock image ${image} is not on this Docker daemon; load or build it (claude-bottle never pulls), ` +
            'or drop egress.proxy "pipelock"',
        );
      }
      throw err;
    }
    const configPath = await writePipelockConfig(
      plan.identity,
      generatePipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT }),
    );
    const pipelock = await classifyDockerErrors('creating pipelock', () =>
      ensureContainer(docker, pipelockContainerSpec(plan, image, configPath)),
    );
    await ensureConnected(docker, pipelock.id, network.internal.name, network.addresses.pipelock);
    if (pipelock.status === 'created') await startContainer(pipelock.container);
    await waitForPipelockReady(pipelock.container, { signal: ctx.signal });
    const data = {
      container: pipelock.id,
      ip: network.addresses.pipelock,
      started_at: await startedAt(pipelock.container),
    };
    return [{ type: 'pipelock.started', data }];
  };
