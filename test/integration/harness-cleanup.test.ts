import { afterAll, describe, expect, it } from 'vitest';
import { bottleLabels, LABELS, resourceNames } from '../../src/shared/names.js';
import { startHarness, storeLabelledIdentities } from '../support/cli-harness.js';
import { sweepIdentity, TEST_BASE_IMAGE, testDocker, testIdentity } from '../support/docker.js';

/**
 * The CLI harness cleans up what its store made even when Redis never indexed
 * the bottle, as after a start that failed between creating its networks and
 * recording itself; and it leaves another store's resources alone. The
 * leftovers are made here exactly as a worker labels them.
 */

const docker = testDocker();
const unindexed = testIdentity('hclean');
const foreign = testIdentity('hforeign');

afterAll(async () => {
  for (const identity of [unindexed, foreign]) await sweepIdentity(docker, identity);
});

async function leaveLikeAWorker(identity: string, store: string): Promise<void> {
  const names = resourceNames(identity);
  const labels = (role: string) => ({ ...bottleLabels(identity, 'hclean', role), [LABELS.store]: store });
  await docker.createNetwork({ Name: names.internalNetwork, Internal: true, Labels: labels('internal-network') });
  await docker.createNetwork({ Name: names.egressNetwork, Labels: labels('egress-network') });
  await docker.createContainer({
    name: names.agentContainer,
    Image: TEST_BASE_IMAGE,
    Cmd: ['sleep', 'infinity'],
    Labels: labels('agent'),
    HostConfig: { NetworkMode: names.internalNetwork },
  });
}

describe('CLI harness cleanup', () => {
  it("removes what its store labelled but never indexed, and nothing of another store's", async () => {
    const h = await startHarness();
    try {
      await leaveLikeAWorker(unindexed, h.store);
      await leaveLikeAWorker(foreign, `${h.store}-other`);
      expect(await h.log.listBottles()).toEqual([]);
      expect(await storeLabelledIdentities(docker, h.store)).toEqual(new Set([unindexed]));
    } finally {
      await h.cleanup();
    }
    expect(await storeLabelledIdentities(docker, h.store)).toEqual(new Set());
    const mine = JSON.stringify({ label: [`${LABELS.identity}=${unindexed}`] });
    expect(await docker.listNetworks({ filters: mine })).toEqual([]);
    expect(await docker.listContainers({ all: true, filters: mine })).toEqual([]);
    const theirs = JSON.stringify({ label: [`${LABELS.identity}=${foreign}`] });
    expect((await docker.listNetworks({ filters: theirs })).map((n) => n.Name).sort()).toEqual(
      [resourceNames(foreign).egressNetwork, resourceNames(foreign).internalNetwork].sort(),
    );
    expect(await docker.listContainers({ all: true, filters: theirs })).toHaveLength(1);
  }, 120_000);
});
