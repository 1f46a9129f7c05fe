import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dockerClient } from '../../effects/docker/client.js';
import { findOrphans, removeOrphans } from '../../effects/docker/orphans.js';
import { isTerminal, stateName } from '../../machines/index.js';
import { currentState } from '../../worker/bottle-log.js';
import { storeId } from '../../events/store-id.js';
import { IDENTITY_PATTERN } from '../../shared/identity.js';
import { bottleHome, statePaths } from '../../shared/paths.js';
import type { CliIO } from '../io.js';
import { openSession } from '../session.js';

/**
 * Removes Docker resources labelled by claude-bottle for this event store
 * whose bottle is not running, and state folders that nothing will resume (no `.preserve`
 * marker, bottle not live). Preserved state is never touched.
 */
export async function runCleanup(opts: { dryRun: boolean }, io: CliIO): Promise<number> {
  const session = await openSession({ needWorker: false });
  try {
    const isLive = async (identity: string) => {
      const { state, lastSeq } = await currentState(session.log, identity);
      // A bottle this store has no events for is not live here.
      return lastSeq > 0 && !isTerminal(state) && stateName(state) !== 'preserved';
    };
    const docker = dockerClient();
    // Only this event store's resources: another Redis's live bottles are not ours to judge.
    const orphans = await findOrphans(docker, isLive, { store: await storeId(session.redis) });
    const staleState: string[] = [];
    const stateRoot = join(bottleHome(), 'state');
    if (existsSync(stateRoot)) {
      for (const name of readdirSync(stateRoot)) {
        if (!IDENTITY_PATTERN.test(name)) continue;
        const paths = statePaths(name);
        if (existsSync(paths.preserveMarker) || (await isLive(name))) continue;
        staleState.push(paths.dir);
      }
    }
    const describe = [
      ...orphans.containers.map((c) => `container ${c.name}`),
      ...orphans.networks.map((n) => `network ${n.name}${n.why === 'earlier-version' ? ' (made by an earlier version)' : ''}`),
    ];
    if (describe.length === 0 && staleState.length === 0) {
      io.stdout('nothing to clean up');
      return 0;
    }
    for (const line of describe) io.stdout(`${opts.dryRun ? 'would remove' : 'removing'} ${line}`);
    for (const dir of staleState) io.stdout(`${opts.dryRun ? 'would remove' : 'removing'} state ${dir}`);
    if (opts.dryRun) return 0;
    await removeOrphans(docker, orphans);
    for (const dir of staleState) rmSync(dir, { recursive: true, force: true });
    return 0;
  } finally {
    await session.close();
  }
}
