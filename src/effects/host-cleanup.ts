import type Docker from 'dockerode';
import type { CleanupReport, CleanupTask } from '../engine/host-tasks.js';
import type { EventStoreView, LeftoverReport } from './types.js';
import { findSupersededImages, removeImages } from './docker/images-cleanup.js';
import { findOrphans, removeOrphans, type OrphanResource } from './docker/orphans.js';
import { removeState, resumableStateFolders } from './state.js';

/**
 * `bottle cleanup` on the worker's host: Docker resources labelled for this
 * event store whose bottle is not live, state folders nothing will resume
 * (no preservation marker, bottle not live), and superseded claude-bottle
 * images no live or resumable bottle uses. Preserved state is never
 * touched; resources of another event store are not judged.
 */
/**
 * What a worker removes when it reconciles its host: the resources labelled
 * for this event store whose bottle is not live (gone from the store, or
 * ended). Liveness is asked again just before removal, so a bottle resumed
 * meanwhile keeps what it has made; a live bottle's earlier-version network,
 * state folders and images are left to `bottle cleanup`.
 */
export async function removeLeftovers(docker: Docker, store: EventStoreView): Promise<LeftoverReport> {
  const found = await findOrphans(docker, (identity) => store.isLive(identity), { store: store.id });
  const stillNotLive = async (resources: OrphanResource[]) => {
    const kept: OrphanResource[] = [];
    for (const r of resources) if (!(await store.isLive(r.identity))) kept.push(r);
    return kept;
  };
  const orphans = { containers: await stillNotLive(found.containers), networks: await stillNotLive(found.networks) };
  await removeOrphans(docker, orphans);
  return { containers: orphans.containers.map((c) => c.name), networks: orphans.networks.map((n) => n.name) };
}

export async function cleanupHost(docker: Docker, task: CleanupTask, store: EventStoreView): Promise<CleanupReport> {
  const isLive = (identity: string) => store.isLive(identity);
  const orphans = await findOrphans(docker, isLive, { store: store.id });
  const staleState: Array<{ identity: string; dir: string }> = [];
  for (const folder of resumableStateFolders()) {
    if (folder.preserved || (await isLive(folder.identity))) continue;
    staleState.push(folder);
  }
  // Containers go first: an orphan container still holds its image.
  if (!task.dry_run) {
    await removeOrphans(docker, orphans);
    for (const folder of staleState) await removeState(folder.identity);
  }
  const images = await findSupersededImages(docker, { inUse: await store.imagesInUse() });
  const removal = task.dry_run ? undefined : await removeImages(docker, images.superseded);
  const imagesGone = removal ? removal.removed : images.superseded;
  const named = (r: { name: string; why: 'not-live' | 'earlier-version' }) => ({ name: r.name, why: r.why });
  return {
    dry_run: task.dry_run,
    containers: orphans.containers.map(named),
    networks: orphans.networks.map(named),
    state: staleState.map((f) => f.dir),
    images: imagesGone.map((i) => ({ tag: i.tag, bytes: i.uniqueSize })),
    images_skipped: (removal?.skipped ?? []).map((s) => ({ tag: s.image.tag, reason: s.reason })),
    freed_bytes: removal?.bytesFreed ?? 0,
  };
}
