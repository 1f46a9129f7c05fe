import type Docker from 'dockerode';
import { lstat, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { snapshotDir } from '../../src/effects/docker/archive.js';
import { ensureHostGuard, listHostGuards } from '../../src/effects/docker/host-guard.js';
import { ensureBottleNetworks } from '../../src/effects/docker/networks.js';
import { findOrphans, removeOrphans } from '../../src/effects/docker/orphans.js';
import { removeBottleResources } from '../../src/effects/docker/teardown.js';
import { waitForAgentExit } from '../../src/effects/docker/wait.js';
import { bottleLabels, LABELS, setStoreLabel } from '../../src/shared/names.js';
import { ensureToolsImage, sweepIdentity, testDocker, testIdentity, testLabels, TEST_BASE_IMAGE, TEST_TOOLS_IMAGE } from '../support/docker.js';

const docker: Docker = testDocker();
const identities: string[] = [];
const tempDirs: string[] = [];

function newIdentity(): string {
  const identity = testIdentity('life');
  identities.push(identity);
  return identity;
}

async function runContainer(identity: string, script: string, opts: { start?: boolean } = {}): Promise<Docker.Container> {
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
    await removeBottleResources(docker, identity, { guardImage: TEST_TOOLS_IMAGE }).catch(() => undefined);
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
      'mkdir -p /tmp/home/.claude/projects/p1 && printf hello > /tmp/home/.claude/projects/p1/log.jsonl && printf "{}" > /tmp/home/.claude/settings.json && ln -s projects/p1 /tmp/home/.claude/latest',
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
  it('leaves no labelled container, network or host-guard rule, and is harmless when repeated', async () => {
    const identity = newIdentity();
    // An internal network as earlier versions made it (the bridge holds a host address), guarded by iptables.
    const legacy = await docker.createNetwork({ Name: `cb-${identity}-internal`, Internal: true, CheckDuplicate: true, Labels: bottleLabels(identity, 'life', 'internal-network') });
    await docker.createNetwork({ Name: `cb-${identity}-egress`, CheckDuplicate: true, Labels: bottleLabels(identity, 'life', 'egress-network') });
    await ensureHostGuard(docker, { identity, bridge: `br-${legacy.id.slice(0, 12)}`, image: TEST_TOOLS_IMAGE });
    await runContainer(identity, 'sleep 600');
    expect((await labelled(identity)).networks).toHaveLength(2);

    await removeBottleResources(docker, identity, { guardImage: TEST_TOOLS_IMAGE });

    expect(await labelled(identity)).toEqual({ containers: [], networks: [] });
    expect((await listHostGuards(docker, TEST_TOOLS_IMAGE)).filter((g) => g.identity === identity)).toEqual([]);
    await expect(removeBottleResources(docker, identity, { guardImage: TEST_TOOLS_IMAGE })).resolves.toMatchObject({ containers: 0, networks: 0 });
  });

  it('reuses existing networks when asked to create them again', async () => {
    const identity = newIdentity();
    const first = await ensureBottleNetworks(docker, identity, 'life');
    const second = await ensureBottleNetworks(docker, identity, 'life');
    expect(second).toEqual(first);
    expect((await docker.getNetwork(first.internal.id).inspect()).Internal).toBe(true);
    expect((await docker.getNetwork(first.egress.id).inspect()).Internal).toBe(false);
  });
});

describe('orphans', () => {
  it("finds a labelled network and host-guard rule whose bottle is not live, and removes them", async () => {
    const identity = newIdentity();
    const networks = await ensureBottleNetworks(docker, identity, 'life');
    await ensureHostGuard(docker, { identity, bridge: networks.internal.bridge, image: TEST_TOOLS_IMAGE });
    // Every other bottle on this daemon counts as live, so only this test's resources can be touched.
    const isLive = async (candidate: string) => candidate !== identity;

    const orphans = await findOrphans(docker, isLive, { guardImage: TEST_TOOLS_IMAGE });

    expect(orphans.networks.map((n) => n.name).sort()).toEqual([networks.egress.name, networks.internal.name].sort());
    expect(orphans.hostGuards).toEqual([{ identity, bridge: networks.internal.bridge }]);
    expect(orphans.containers).toEqual([]);

    await removeOrphans(docker, orphans, { guardImage: TEST_TOOLS_IMAGE });

    expect((await labelled(identity)).networks).toEqual([]);
    const after = await findOrphans(docker, isLive, { guardImage: TEST_TOOLS_IMAGE });
    expect(after).toEqual({ containers: [], networks: [], hostGuards: [] });
  });

  it("leaves alone another event store's resources even when their bottle is unknown here", async () => {
    const identity = newIdentity();
    setStoreLabel('other-store');
    try {
      await ensureBottleNetworks(docker, identity, 'life');
    } finally {
      setStoreLabel('');
    }
    const nothingLive = async () => false;
    const mine = await findOrphans(docker, nothingLive, { guardImage: TEST_TOOLS_IMAGE, store: 'my-store' });
    expect(mine.networks.filter((n) => n.identity === identity)).toEqual([]);
    const theirs = await findOrphans(docker, async (c) => c !== identity, { guardImage: TEST_TOOLS_IMAGE, store: 'other-store' });
    expect(theirs.networks.map((n) => n.identity)).toEqual([identity, identity]);
  });
});
