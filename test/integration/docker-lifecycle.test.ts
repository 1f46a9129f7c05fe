import type Docker from 'dockerode';
import { lstat, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { snapshotDir } from '../../src/effects/docker/archive.js';
import { ensureBottleNetworks } from '../../src/effects/docker/networks.js';
import { findOrphans, removeOrphans } from '../../src/effects/docker/orphans.js';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { waitForAgentExit } from '../../src/effects/docker/wait.js';
import { bottleLabels, LABELS, setStoreLabel } from '../../src/shared/names.js';
import { subnetPool } from '../../src/shared/subnet-pool.js';
import {
  ensureToolsImage,
  sweepIdentity,
  testDocker,
  testIdentity,
  testLabels,
  TEST_BASE_IMAGE,
} from '../support/docker.js';

const docker: Docker = testDocker();
const identities: string[] = [];
const tempDirs: string[] = [];
const pool = subnetPool();

function newIdentity(): string {
  const identity = testIdentity('life');
  identities.push(identity);
  return identity;
}

async function runContainer(
  identity: string,
  script: string,
  opts: { start?: boolean } = {},
): Promise<Docker.Container> {
  const container = await docker.createContainer({
    Image: TEST_BASE_IMAGE,
    Cmd: ['sh', '-c', script],
    User: '1000:1000',
    Labels: testLabels(identity, 'agent'),
    HostConfig: { NetworkMode: 'none' },
  });
  if (opts.start !== false) await container.start();
  return container;
}

async function labelled(identity: string) {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  return {
    containers: await docker.listContainers({ all: true, filters }),
    networks: await docker.listNetworks({ filters }),
  };
}

beforeAll(async () => {
  await ensureToolsImage(docker);
});

afterEach(async () => {
  for (const identity of identities.splice(0)) {
    await removeBottleResources(docker, identity).catch(() => undefined);
    await sweepIdentity(docker, identity);
  }
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('waitForAgentExit', () => {
  it.each([
    [0, null],
    [1, null],
  ])('records a plain exit %i with no signal', async (code, signal) => {
    const container = await runContainer(newIdentity(), `exit ${code}`);
    expect(await waitForAgentExit(docker, container)).toEqual({ code, signal });
  });

  it('records SIGKILL as 137', async () => {
    const container = await runContainer(newIdentity(), 'sleep 600');
    const exit = waitForAgentExit(docker, container);
    await container.kill({ signal: 'SIGKILL' });
    expect(await exit).toEqual({ code: 137, signal: 'SIGKILL' });
  });

  it('returns at once for an agent that already stopped (a retried watcher)', async () => {
    const container = await runContainer(newIdentity(), 'exit 3');
    await container.wait();
    expect(await waitForAgentExit(docker, container.id)).toEqual({ code: 3, signal: null });
  });
});

describe('snapshotDir', () => {
  it("copies a stopped agent's ~/.claude into the destination folder", async () => {
    const container = await runContainer(
      newIdentity(),
      'mkdir -p /tmp/home/.claude/projects/p1 && printf hello > /tmp/home/.claude/projects/p1/log.jsonl && ' +
        'printf "{}" > /tmp/home/.claude/settings.json && ln -s projects/p1 /tmp/home/.claude/latest',
    );
    await container.wait();
    const dest = join(await mkdtemp(join(tmpdir(), 'cb-snap-')), 'transcript');
    tempDirs.push(dest, join(dest, '..'));

    const result = await snapshotDir(docker, container, '/tmp/home/.claude', dest);

    expect(result).toEqual({ files: 2, bytes: 7, missing: false, refused: 0 });
    expect(await readFile(join(dest, 'projects/p1/log.jsonl'), 'utf8')).toBe('hello');
    expect(await readFile(join(dest, 'latest/log.jsonl'), 'utf8')).toBe('hello');
  });

  it('refuses links that point outside the destination and writes nothing through them', async () => {
    const container = await runContainer(
      newIdentity(),
      'mkdir -p /tmp/c && ln -s /etc /tmp/c/abs && ln -s ../../.. /tmp/c/up && printf ok > /tmp/c/kept',
    );
    await container.wait();
    const parent = await mkdtemp(join(tmpdir(), 'cb-snap-'));
    tempDirs.push(parent);
    const dest = join(parent, 'transcript');

    const result = await snapshotDir(docker, container, '/tmp/c', dest);

    expect(result).toMatchObject({ files: 1, refused: 2, missing: false });
    expect((await readdir(dest)).sort()).toEqual(['kept']);
    expect(await readdir(parent)).toEqual(['transcript']);
  });

  it('replaces an earlier snapshot instead of merging into it', async () => {
    const container = await runContainer(newIdentity(), 'mkdir -p /tmp/c && printf new > /tmp/c/now');
    await container.wait();
    const parent = await mkdtemp(join(tmpdir(), 'cb-snap-'));
    tempDirs.push(parent);
    const dest = join(parent, 'transcript');
    await snapshotDir(docker, container, '/tmp/c', dest);
    await rm(join(dest, 'now'));
    await (await import('node:fs/promises')).writeFile(join(dest, 'stale'), 'x');

    await snapshotDir(docker, container, '/tmp/c', dest);

    expect(await readdir(dest)).toEqual(['now']);
  });

  it('reports a folder the agent never created as missing', async () => {
    const container = await runContainer(newIdentity(), 'exit 0');
    await container.wait();
    const parent = await mkdtemp(join(tmpdir(), 'cb-snap-'));
    tempDirs.push(parent);

    const result = await snapshotDir(docker, container, '/home/node/.claude', join(parent, 'transcript'));

    expect(result).toEqual({ files: 0, bytes: 0, missing: true, refused: 0 });
    await expect(lstat(join(parent, 'transcript'))).rejects.toThrow();
  });
});

describe('removeBottleResources', () => {
  it('leaves no labelled container or network, and is harmless when repeated', async () => {
    const identity = newIdentity();
    await ensureBottleNetworks(docker, identity, 'life', pool);
    // An internal network as earlier versions made it (on Docker's default pools, the bridge holding a host address).
    await docker.createNetwork({
      Name: `cb-${identity}-legacy`,
      Internal: true,
      CheckDuplicate: true,
      Labels: bottleLabels(identity, 'life', 'internal-network'),
    });
    await runContainer(identity, 'sleep 600');
    expect((await labelled(identity)).networks).toHaveLength(3);

    await removeBottleResources(docker, identity);

    expect(await labelled(identity)).toEqual({ containers: [], networks: [] });
    await expect(removeBottleResources(docker, identity)).resolves.toMatchObject({ containers: 0, networks: 0 });
  });

  it('reuses existing networks when asked to create them again', async () => {
    const identity = newIdentity();
    const first = await ensureBottleNetworks(docker, identity, 'life', pool);
    const second = await ensureBottleNetworks(docker, identity, 'life', pool);
    expect(second).toEqual(first);
    expect((await docker.getNetwork(first.internal.id).inspect()).Internal).toBe(true);
    expect((await docker.getNetwork(first.egress.id).inspect()).Internal).toBe(false);
  });
});

describe('orphans', () => {
  it('finds the labelled networks and container of a bottle that is not live, and removes them', async () => {
    const identity = newIdentity();
    const networks = await ensureBottleNetworks(docker, identity, 'life', pool);
    const container = await runContainer(identity, 'sleep 600', { start: false });
    // Every other bottle on this daemon counts as live, so only this test's resources can be touched.
    const isLive = async (candidate: string) => candidate !== identity;

    const orphans = await findOrphans(docker, isLive);

    const mine = <T extends { identity: string }>(list: T[]) => list.filter((r) => r.identity === identity);
    expect(
      mine(orphans.networks)
        .map((n) => n.name)
        .sort(),
    ).toEqual([networks.egress.name, networks.internal.name].sort());
    expect(mine(orphans.networks).map((n) => n.why)).toEqual(['not-live', 'not-live']);
    expect(mine(orphans.containers).map((c) => c.id)).toEqual([container.id]);

    await removeOrphans(docker, { containers: mine(orphans.containers), networks: mine(orphans.networks) });

    expect(await labelled(identity)).toEqual({ containers: [], networks: [] });
    const after = await findOrphans(docker, isLive);
    expect(mine(after.networks)).toEqual([]);
    expect(mine(after.containers)).toEqual([]);
  });

  it('finds the internal network of an earlier version even while its bottle is live', async () => {
    const identity = newIdentity();
    const networks = await ensureBottleNetworks(docker, identity, 'life', pool);
    const legacy = await docker.createNetwork({
      Name: `cb-${identity}-legacy`,
      Internal: true,
      CheckDuplicate: true,
      Labels: bottleLabels(identity, 'life', 'internal-network'),
    });
    const everythingLive = async () => true;

    const orphans = await findOrphans(docker, everythingLive);

    const mine = orphans.networks.filter((n) => n.identity === identity);
    // Its bottle's address-less internal network and its egress network stay.
    expect(mine).toEqual([{ id: legacy.id, name: `cb-${identity}-legacy`, identity, why: 'earlier-version' }]);
    expect(mine.map((n) => n.name)).not.toContain(networks.internal.name);
  });

  it("leaves alone another event store's resources even when their bottle is unknown here", async () => {
    const identity = newIdentity();
    setStoreLabel('other-store');
    try {
      await ensureBottleNetworks(docker, identity, 'life', pool);
    } finally {
      setStoreLabel('');
    }
    const nothingLive = async () => false;
    const mine = await findOrphans(docker, nothingLive, { store: 'my-store' });
    expect(mine.networks.filter((n) => n.identity === identity)).toEqual([]);
    const theirs = await findOrphans(docker, async (c) => c !== identity, { store: 'other-store' });
    expect(theirs.networks.map((n) => n.identity)).toEqual([identity, identity]);
  });
});
