import type Docker from 'dockerode';
import type { CleanupReport, CleanupTask, EventStoreView } from '../worker/host-task.js';
import { findOrphans, removeOrphans } from './docker/orphans.js';
import { removeState, resumableStateFolders } from './state.js';

/**
 * `bottle cleanup` on the worker's host: Docker resources labelled for this
 * event store whose bottle is not live, and state folders nothing will
 * resume (no preservation marker, bottle not live). Preserved state is never
 * touched; resources of another event store are not judged.
 */
export async function cleanupHost(
  docker: Docker,
  task: CleanupTask,
  store: EventStoreView,
): Promise<CleanupReport> {
  const isLive = (identity: string) => store.isLive(identity);
  const orphans = await findOrphans(docker, isLive, { store: store.id });
  const staleState: Array<{ identity: string; dir: string }> = [];
  for (const folder of resumableStateFolders()) {
    if (folder.preserved || (await isLive(folder.identity))) continue;
    staleState.push(folder);
  }
  if (!task.dry_run) {
    await removeOrphans(docker, orphans);
    for (const folder of staleState) await removeState(folder.identity);
  }
  const named = (r: { name: string; why: 'not-live' | 'earlier-version' }) => ({ name: r.name, why: r.why });
  return {
    dry_run: task.dry_run,
    containers: orphans.containers.map(named),
    networks: orphans.networks.map(named),
    state: staleState.map((f) => f.dir),
    images: [],
    freed_bytes: 0,
  };
}
