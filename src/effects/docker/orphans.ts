import type Docker from 'dockerode';
import { CREATED_BY, LABELS } from '../../shared/names.js';
import { isHostAddressless } from './networks.js';
import { isGone } from './remove-bottle.js';

/**
 * Docker resources that claude-bottle made for a bottle that is no longer
 * live (its worker died, or teardown was interrupted), and internal networks
 * made by earlier versions, whose bridge still holds a host address. Found
 * by label only: nothing without `created-by=claude-bottle` is ever touched.
 */
export interface OrphanResource {
  id: string;
  name: string;
  identity: string;
  /** Why it goes: its bottle is not live, or it is an internal network of an earlier version. */
  why: 'not-live' | 'earlier-version';
}

export interface Orphans {
  containers: OrphanResource[];
  networks: OrphanResource[];
}

export interface OrphanOptions {
  /** Only resources labelled with this event store are judged (see LABELS.store); others belong to someone else. */
  store?: string;
}

export async function findOrphans(
  docker: Docker,
  isLive: (identity: string) => Promise<boolean>,
  opts: OrphanOptions = {},
): Promise<Orphans> {
  const labels = [`${LABELS.createdBy}=${CREATED_BY}`];
  if (opts.store) labels.push(`${LABELS.store}=${opts.store}`);
  const filters = JSON.stringify({ label: labels });
  const liveness = new Map<string, Promise<boolean>>();
  const live = (identity: string) => {
    if (!liveness.has(identity)) liveness.set(identity, isLive(identity));
    return liveness.get(identity)!;
  };

  const networks: OrphanResource[] = [];
  const legacyBottles = new Set<string>();
  for (const n of await docker.listNetworks({ filters })) {
    const identity = n.Labels?.[LABELS.identity];
    if (!identity) continue;
    const legacy = n.Labels?.[LABELS.role] === 'internal-network' && !isHostAddressless(n.Options);
    if (legacy) legacyBottles.add(identity);
    if (legacy || !(await live(identity))) {
      networks.push({ id: n.Id, name: n.Name, identity, why: legacy ? 'earlier-version' : 'not-live' });
    }
  }
  const containers: OrphanResource[] = [];
  for (const c of await docker.listContainers({ all: true, filters })) {
    const identity = c.Labels?.[LABELS.identity];
    if (!identity) continue;
    // A container on a network that goes must go first, or the network cannot be removed.
    const legacy = legacyBottles.has(identity);
    if (legacy || !(await live(identity))) {
      const name = (c.Names?.[0] ?? c.Id).replace(/^\//, '');
      containers.push({ id: c.Id, name, identity, why: legacy ? 'earlier-version' : 'not-live' });
    }
  }
  return { containers, networks };
}

/** Removes exactly the listed orphans; anything already gone counts as removed. */
export async function removeOrphans(docker: Docker, orphans: Orphans): Promise<void> {
  const tolerate = (err: unknown) => {
    if (!isGone(err)) throw err;
  };
  for (const c of orphans.containers) await docker.getContainer(c.id).remove({ force: true, v: true }).catch(tolerate);
  for (const n of orphans.networks) await docker.getNetwork(n.id).remove().catch(tolerate);
}
