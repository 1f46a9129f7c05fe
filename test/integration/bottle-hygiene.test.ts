import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDRESSLESS_BRIDGE_OPTION } from '../../src/effects/docker/networks.js';
import { storeId } from '../../src/event-store/store-id.js';
import { bottleLabels, LABELS, resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { ensureToolsImage, sweepIdentity, testIdentity } from '../support/docker.js';

/**
 * The user-facing contract of the CLI around real bottles: what `list`,
 * `start --detach`, `cleanup`, `doctor` print and how usage errors exit.
 */

let h: BottleHarness;
let manifest: string;
let running: string; // a live `sleeper` bottle shared by the tests below
const orphan = testIdentity('ghost'); // an identity this harness's Redis has never heard of
const foreign = testIdentity('alien'); // labelled with another event store: someone else's bottle
const relic = testIdentity('relic'); // an internal network made by an earlier version (its bridge has a host address)

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [
      { name: 'sleeper', bottle: 'box', command: ['sleep', '600'] },
      { name: 'ok', bottle: 'box', command: ['bash', '-c', 'exit 0'] },
    ],
  });
}, 120_000);

afterAll(async () => {
  await sweepIdentity(h.docker, orphan).catch(() => undefined);
  await sweepIdentity(h.docker, foreign).catch(() => undefined);
  await sweepIdentity(h.docker, relic).catch(() => undefined);
  await h?.cleanup();
});

async function labelled(identity: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const [containers, networks] = await Promise.all([
    h.docker.listContainers({ all: true, filters }),
    h.docker.listNetworks({ filters }),
  ]);
  return [
    ...containers.map((c) => `container ${c.Names[0].replace(/^\//, '')}`),
    ...networks.map((n) => `network ${n.Name}`),
  ].sort();
}

describe('start --detach, list', () => {
  it('start --detach prints the identity as the first stdout line, once the agent runs', async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']);
    expect(started.code).toBe(0);
    running = identityFrom(started);
    expect(running).toMatch(/^sleeper-[0-9a-z]{5}$/);
    // The CLI returns only after the launch finished: the event is already in the log.
    expect((await h.log.read(running)).map((e) => e.type)).toContain('agent.started');
  });

  it('list --format json shows the running bottle with its fields; cleaned ones only with --all', async () => {
    const done = identityFrom(await h.cli(['--manifest', manifest, 'start', 'ok', '--detach']));
    await h.waitForEvent(done, 'bottle.cleaned');

    const live = await h.cli(['list', '--format', 'json']);
    expect(live.code).toBe(0);
    const rows = JSON.parse(live.stdout) as Array<Record<string, unknown>>;
    expect(Array.isArray(rows)).toBe(true);
    const row = rows.find((r) => r.identity === running);
    expect(row).toMatchObject({
      identity: running,
      agent: 'sleeper',
      bottle: 'box',
      state: 'running',
      host: expect.any(String),
      started_at: expect.any(String),
      tokens: 0,
      ports: [],
    });
    expect(String(row!.host)).toContain(hostname());
    expect(Number.isNaN(Date.parse(String(row!.started_at)))).toBe(false);
    expect(rows.map((r) => r.identity)).not.toContain(done);

    const all = JSON.parse((await h.cli(['list', '--all', '--format', 'json'])).stdout) as Array<
      Record<string, unknown>
    >;
    expect(all.find((r) => r.identity === done)).toMatchObject({ agent: 'ok', state: 'cleaned' });
    expect(all.find((r) => r.identity === running)).toMatchObject({ state: 'running' });
  });
});

describe('cleanup', () => {
  beforeAll(async () => {
    // What a worker that died mid-launch leaves behind: labelled resources of a bottle this store
    // has no record of. The worker labels what it makes with its store's id; do the same here.
    const conn = h.redis.connect();
    const store = await storeId(conn);
    conn.disconnect();
    const image = await ensureToolsImage(h.docker);
    for (const [identity, storeLabel] of [
      [orphan, store],
      [foreign, 'another-store'],
    ] as const) {
      const names = resourceNames(identity);
      const agent = identity.split('-')[0];
      // As this version makes it: no host address on the bridge, so only the bottle's liveness decides.
      await h.docker.createNetwork({
        Name: names.internalNetwork,
        Driver: 'bridge',
        Internal: true,
        Labels: { ...bottleLabels(identity, agent, 'internal-network'), [LABELS.store]: storeLabel },
        Options: { [ADDRESSLESS_BRIDGE_OPTION]: 'true' },
      });
      await h.docker.createContainer({
        name: names.agentContainer,
        Image: image,
        Cmd: ['sleep', 'infinity'],
        Labels: { ...bottleLabels(identity, agent, 'agent'), [LABELS.store]: storeLabel },
        HostConfig: { NetworkMode: names.internalNetwork },
      });
    }
    await h.docker.createNetwork({
      Name: resourceNames(relic).internalNetwork,
      Driver: 'bridge',
      Internal: true,
      Labels: { ...bottleLabels(relic, relic.split('-')[0], 'internal-network'), [LABELS.store]: store },
    });
  }, 120_000);

  const orphanResources = () => [
    `container ${resourceNames(orphan).agentContainer}`,
    `network ${resourceNames(orphan).internalNetwork}`,
  ];
  const foreignResources = () => [
    `container ${resourceNames(foreign).agentContainer}`,
    `network ${resourceNames(foreign).internalNetwork}`,
  ];

  it('--dry-run lists orphans and earlier-version networks, removes nothing, leaves live and foreign out', async () => {
    expect(await labelled(orphan)).toEqual(orphanResources());
    const dry = await h.cli(['cleanup', '--dry-run']);
    expect(dry.code).toBe(0);
    const lines = dry.stdout.split('\n');
    for (const r of orphanResources()) expect(lines).toContain(`would remove ${r}`);
    const relicNetwork = resourceNames(relic).internalNetwork;
    expect(lines).toContain(`would remove network ${relicNetwork} (made by an earlier version)`);
    expect(dry.stdout).not.toContain(running);
    expect(dry.stdout).not.toContain(foreign);
    expect(await labelled(orphan)).toEqual(orphanResources());
    expect(await labelled(relic)).toEqual([`network ${relicNetwork}`]);
  });

  it("removes the orphan and leaves the live bottle and another store's resources untouched", async () => {
    const liveBefore = await labelled(running);
    expect(liveBefore.length).toBeGreaterThanOrEqual(4); // two networks, gateway, agent
    const real = await h.cli(['cleanup']);
    expect(real.code).toBe(0);
    for (const r of orphanResources()) expect(real.stdout).toContain(`removed ${r}`);
    expect(await labelled(orphan)).toEqual([]);
    expect(await labelled(relic)).toEqual([]);
    expect(await labelled(foreign)).toEqual(foreignResources());
    expect(await labelled(running)).toEqual(liveBefore);
    expect((await h.docker.getContainer(resourceNames(running).agentContainer).inspect()).State.Running).toBe(true);
    const rows = JSON.parse((await h.cli(['list', '--format', 'json'])).stdout) as Array<{
      identity: string;
      state: string;
    }>;
    expect(rows.find((r) => r.identity === running)?.state).toBe('running');
  }, 120_000);
});

describe('usage errors and doctor', () => {
  it('start --format json without --dry-run exits 2 with one line on stderr', async () => {
    const res = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--format', 'json']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/--format json/);
  });

  it('a bad manifest exits 2 and names the JSON path of the problem', async () => {
    const bad = h.writeManifest({
      bottles: [{ name: 'box', egress: { allow: 'github.com' } }],
      agents: [{ name: 'a', bottle: 'box' }],
    });
    const res = await h.cli(['--manifest', bad, 'start', 'a', '--detach']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('bottles[0].egress.allow');
    // Nothing was launched for it.
    const rows = JSON.parse((await h.cli(['list', '--all', '--format', 'json'])).stdout) as Array<{ agent: string }>;
    expect(rows.map((r) => r.agent)).not.toContain('a');
  });

  it('doctor exits 0 and reports Docker, runsc and the Redis it was pointed at as ok', async () => {
    const res = await h.cli(['doctor']);
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines.find((l) => /Docker reachable/.test(l))).toMatch(/^ok\s/);
    expect(lines.find((l) => /runsc/.test(l))).toMatch(/^ok\s/);
    const redisLine = lines.find((l) => /Redis reachable/.test(l));
    expect(redisLine).toMatch(/^ok\s/);
    expect(redisLine).toContain(h.redis.url);
  });
});
