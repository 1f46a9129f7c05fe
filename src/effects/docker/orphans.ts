import type Docker from 'dockerode';
import { CREATED_BY, LABELS } from '../../shared/names.js';
import { statusOf } from './client.js';
import { findHostGuardImage, listHostGuards, removeHostGuard, type HostGuard } from './host-guard.js';

/**
 * Docker resources that claude-bottle made for a bottle that is no longer
 * live (its worker died, or teardown was interrupted). Found by label only:
 * nothing without `created-by=claude-bottle` is ever touched.
 */
export interface OrphanResource {
  id: string;
  name: string;
  identity: string;
}

export interface Orphans {
  containers: OrphanResource[];
  networks: OrphanResource[];
  hostGuards: HostGuard[];
}

export interface OrphanOptions {
  /** Image with iptables for listing/removing host-guard rules; discovered when absent, skipped when none exists. */
  guardImage?: string;
  /** Only resources labelled with this event store are judged (see LABELS.store); others belong to someone else. */
  store?: string;
}

export async function findOrphans(docker: Docker, isLive: (identity: string) => Promise<boolean>, opts: OrphanOptions = {}): Promise<Orphans> {
  const labels = [`${LABELS.createdBy}=${CREATED_BY}`];
  if (opts.store) labels.push(`${LABELS.store}=${opts.store}`);
  const filters = JSON.stringify({ label: labels });
  const liveness = new Map<string, Promise<boolean>>();
  const live = (identity: string) => {
    if (!liveness.has(identity)) liveness.set(identity, isLive(identity));
    return liveness.get(identity)!;
  };

  const containers: OrphanResource[] = [];
  for (const c of await docker.listContainers({ all: true, filters })) {
    const identity = c.Labels?.[LABELS.identity];
    if (identity && !(await live(identity))) containers.push({ id: c.Id, name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''), identity });
  }
  const networks: OrphanResource[] = [];
  for (const n of await docker.listNetworks({ filters })) {
    const identity = n.Labels?.[LABELS.identity];
    if (identity && !(await live(identity))) networks.push({ id: n.Id, name: n.Name, identity });
  }
  const hostGuards: HostGuard[] = [];
  const guardImage = opts.guardImage ?? (await findHostGuardImage(docker));
  if (guardImage) {
    // A guard rule carries no store label: it is an orphan only when its bridge is gone or
    // belongs to a network being removed here, so another store's live bottle keeps its protection.
    const bridges = new Set((await docker.listNetworks()).map((n) => `br-${n.Id.slice(0, 12)}`));
    const orphanBridges = new Set(networks.map((n) => `br-${n.id.slice(0, 12)}`));
    for (const guard of await listHostGuards(docker, guardImage)) {
      const bridgeOrphaned = !bridges.has(guard.bridge) || orphanBridges.has(guard.bridge);
      if (bridgeOrphaned && !(await live(guard.identity))) hostGuards.push(guard);
    }
  }
  return { containers, networks, hostGuards };
}

/** Removes exactly the listed orphans; anything already gone counts as removed. */
export async function removeOrphans(docker: Docker, orphans: Orphans, opts: OrphanOptions = {}): Promise<void> {
  const tolerate = (err: unknown) => {
    const status = statusOf(err);
    if (status !== 404 && status !== 409) throw err;
  };
  for (const c of orphans.containers) await docker.getContainer(c.id).remove({ force: true, v: true }).catch(tolerate);
  if (orphans.hostGuards.length > 0) {
    const guardImage = opts.guardImage ?? (await findHostGuardImage(docker));
    if (guardImage) {
      for (const identity of new Set(orphans.hostGuards.map((g) => g.identity))) await removeHostGuard(docker, { identity, image: guardImage });
    }
  }
  for (const n of orphans.networks) await docker.getNetwork(n.id).remove().catch(tolerate);
}
