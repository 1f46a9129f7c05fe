import type Docker from 'dockerode';
import { LABELS } from '../../shared/names.js';
import { statusOf } from './client.js';
import { findHostGuardImage, removeHostGuard } from './host-guard.js';
import { isHostAddressless } from './networks.js';

/**
 * Removes everything Docker holds for one bottle, found by its identity label
 * (not by name, so leftovers from an interrupted earlier attempt go too).
 * Every step treats "already gone" as done, so it is safe to repeat.
 */
export interface TeardownOptions {
  /** Image with iptables for removing the host guard; found from the bottle's gateway or local gateway images when absent. */
  guardImage?: string;
}

export interface TeardownResult {
  containers: number;
  networks: number;
  /**
   * false when a legacy guard rule could exist but no image with iptables was available: the rule
   * then stays on a bridge that no longer exists, where it matches nothing (orphan cleanup removes it).
   */
  hostGuardRemoved: boolean;
}

function gone(err: unknown): boolean {
  const status = statusOf(err);
  // 404: no such object; 409: removal already in progress (a racing teardown).
  return status === 404 || status === 409;
}

export async function removeBottleResources(docker: Docker, identity: string, opts: TeardownOptions = {}): Promise<TeardownResult> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const containers = await docker.listContainers({ all: true, filters });
  const gatewayImage = containers.find((c) => c.Labels?.[LABELS.role] === 'gateway')?.Image;

  for (const c of containers) {
    try {
      // force: stops a running agent; v: its anonymous volumes (the gateway's secrets folder) go with it.
      await docker.getContainer(c.Id).remove({ force: true, v: true });
    } catch (err) {
      if (!gone(err)) throw err;
    }
  }

  const networks = await docker.listNetworks({ filters });
  // Only an internal network made before bridges became address-less ever got an iptables guard.
  const guarded = networks.some((n) => n.Labels?.[LABELS.role] === 'internal-network' && !isHostAddressless(n.Options));
  const guardImage = guarded ? (opts.guardImage ?? gatewayImage ?? (await findHostGuardImage(docker))) : undefined;
  if (guardImage) await removeHostGuard(docker, { identity, image: guardImage });

  for (const n of networks) {
    try {
      await docker.getNetwork(n.Id).remove();
    } catch (err) {
      if (!gone(err)) throw err;
    }
  }
  return { containers: containers.length, networks: networks.length, hostGuardRemoved: !guarded || guardImage !== undefined };
}
