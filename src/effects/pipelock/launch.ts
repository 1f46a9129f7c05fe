import type Docker from 'dockerode';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BottlePlan } from '../../plan/schema.js';
import { statePaths } from '../../shared/paths.js';
import { statusOf } from '../docker/client.js';
import { containerIp, ensureConnected, ensureContainer, startContainer } from '../docker/containers.js';
import type { BottleNetworks } from '../docker/networks.js';
import { PermanentEffectError } from '../types.js';
import { pipelockAgentEnvironment } from './agent-env.js';
import { generatePipelockConfig, PIPELOCK_LISTEN_PORT } from './config.js';
import { pipelockContainerName, pipelockContainerSpec } from './container.js';
import { waitForPipelockReady } from './ready.js';

/** The image named in pipelock's own docs; used when the manifest names none. */
export const DEFAULT_PIPELOCK_IMAGE = 'ghcr.io/luckypipewrench/pipelock:latest';

export function usesPipelock(plan: BottlePlan): boolean {
  return plan.egress?.proxy === 'pipelock';
}

export function pipelockImageFor(plan: BottlePlan): string {
  return plan.egress?.pipelock_image ?? DEFAULT_PIPELOCK_IMAGE;
}

/**
 * Runs pipelock as the bottle's egress hop, next to the gateway (which keeps
 * the credential port). Idempotent like every effect: the config is rewritten
 * from the plan, the container is found or created, connected to the internal
 * network and waited on until it logs its startup line. The image must already
 * be on the daemon: this tool never pulls.
 */
export async function startPipelock(docker: Docker, plan: BottlePlan, networks: BottleNetworks, signal?: AbortSignal): Promise<void> {
  const image = pipelockImageFor(plan);
  try {
    await docker.getImage(image).inspect();
  } catch (err) {
    if (statusOf(err) === 404) {
      throw new PermanentEffectError(`pipelock image ${image} is not on this Docker daemon; load or build it (claude-bottle never pulls), or drop egress.proxy "pipelock"`);
    }
    throw err;
  }
  const configPath = join(statePaths(plan.identity).dir, 'pipelock.yaml');
  await writeFile(configPath, generatePipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT }), { mode: 0o644 });
  const pipelock = await ensureContainer(docker, pipelockContainerSpec(plan, image, configPath));
  await ensureConnected(docker, pipelock.id, networks.internal.name);
  if (pipelock.status === 'created') await startContainer(pipelock.container);
  await waitForPipelockReady(pipelock.container, { signal });
}

/** The agent's environment when pipelock is the egress hop. */
export async function pipelockEnvironment(docker: Docker, plan: BottlePlan, networks: BottleNetworks, gatewayIp: string): Promise<Record<string, string>> {
  const pipelockIp = await containerIp(docker, pipelockContainerName(plan.identity), networks.internal.name);
  return pipelockAgentEnvironment(plan, { pipelockIp, gatewayIp });
}
