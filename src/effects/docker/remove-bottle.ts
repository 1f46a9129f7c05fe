import type Docker from 'dockerode';
import { LABELS } from '../../shared/names.js';
import { statusOf } from './client.js';

/**
 * Removes everything Docker holds for one bottle, found by its identity label
 * (not by name, so leftovers from an interrupted earlier attempt go too).
 * Every step treats "already gone" as done, so it is safe to repeat.
 * Removing its networks frees their subnets in the pool.
 */
export interface TeardownResult {
  containers: number;
  networks: number;
}

/** 404: no such object; 409: removal already in progress (a racing teardown). */
export function isGone(err: unknown): boolean {
  const status = statusOf(err);
  return status === 404 || status === 409;
}

export async function removeBottleResources(docker: Docker, identity: string): Promise<TeardownResult> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const containers = await docker.listContainers({ all: true, filters });
  // The agent first: a sidecar removed under a running agent would be a loss of its enforcement (watch_sidecars).
  const agentFirst = [...containers].sort((a, b) => Number(isAgent(b)) - Number(isAgent(a)));
  for (const c of agentFirst) {
    try {
      // force: stops a running agent; v: its anonymous volumes (the gateway's secrets folder) go with it.
      await docker.getContainer(c.Id).remove({ force: true, v: true });
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
  const networks = await docker.listNetworks({ filters });
  for (const n of networks) {
    try {
      await docker.getNetwork(n.Id).remove();
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
  return { containers: containers.length, networks: networks.length };
}

function isAgent(container: Docker.ContainerInfo): boolean {
  return container.Labels?.[LABELS.role] === 'agent';
}
