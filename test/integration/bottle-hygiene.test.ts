import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  await h?.cleanup();
});

async function labelled(identity: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const [containers, networks] = await Promise.all([h.docker.listContainers({ all: true, filters }), h.docker.listNetworks({ filters })]);
  return [...containers.map((c) => `container ${c.Names[0].replace(/^\//, '')}`), ...networks.map((n) => `network ${n.Name}`)].sort();
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
    expect(row).toEqual({ identity: running, agent: 'sleeper', bottle: 'box', state: 'running', host: expect.any(String), started_at: expect.any(String) });
    expect(String(row!.host)).toContain(hostname());
    expect(Number.isNaN(Date.parse(String(row!.started_at)))).toBe(false);
    expect(rows.map((r) => r.identity)).not.toContain(done);

    const all = JSON.parse((await h.cli(['list', '--all', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
    expect(all.find((r) => r.identity === done)).toMatchObject({ agent: 'ok', state: 'cleaned' });
    expect(all.find((r) => r.identity === running)).toMatchObject({ state: 'running' });
  });
});

describe('cleanup', () => {
  beforeAll(async () => {
    // What a worker that died mid-launch leaves behind: labelled resources of a bottle no Redis knows.
    const names = resourceNames(orphan);
    await h.docker.createNetwork({ Name: names.internalNetwork, Driver: 'bridge', Internal: true, Labels: bottleLabels(orphan, 'ghost', 'internal-network') });
    await h.docker.createContainer({
      name: names.agentContainer,
      Image: await ensureToolsImage(h.docker),
      Cmd: ['sleep', 'infinity'],
      Labels: bottleLabels(orphan, 'ghost', 'agent'),
      HostConfig: { NetworkMode: names.internalNetwork },
    });
  }, 120_000);

  it('--dry-run lists the orphan without removing it, and leaves the live bottle out', async () => {
    const before = await labelled(orphan);
    expect(before).toEqual([`container ${resourceNames(orphan).agentContainer}`, `network ${resourceNames(orphan).internalNetwork}`]);
    const dry = await h.cli(['cleanup', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would remove container ${resourceNames(orphan).agentContainer}`);
    expect(dry.stdout).toContain(`would remove network ${resourceNames(orphan).internalNetwork}`);
    expect(dry.stdout).not.toContain(running);
    expect(await labelled(orphan)).toEqual(before);
  });

  it('removes the orphan and leaves the live bottle untouched', async (ctx) => {
    // `cleanup` treats every claude-bottle resource this Redis does not know as an orphan.
    // The suite runs integration files one at a time, so anything else is a leftover; but when
    // someone else's bottles share this Docker host, removing them would break their work.
    const mine = (line: string) => line.includes(orphan) || line.includes(h.home);
    let foreign: string[] = [];
    for (let i = 0; i < 30; i++) {
      foreign = (await h.cli(['cleanup', '--dry-run'])).stdout.split('\n').filter((l) => l.startsWith('would remove') && !mine(l));
      if (foreign.length === 0) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    if (foreign.length > 0) ctx.skip(`other claude-bottle resources exist on this Docker host; not removing them: ${foreign.join('; ')}`);

    const liveBefore = await labelled(running);
    expect(liveBefore.length).toBeGreaterThanOrEqual(4); // two networks, gateway, agent
    const real = await h.cli(['cleanup']);
    expect(real.code).toBe(0);
    expect(real.stdout).toContain(`removing container ${resourceNames(orphan).agentContainer}`);
    expect(await labelled(orphan)).toEqual([]);
    expect(await labelled(running)).toEqual(liveBefore);
    expect((await h.docker.getContainer(resourceNames(running).agentContainer).inspect()).State.Running).toBe(true);
    const rows = JSON.parse((await h.cli(['list', '--format', 'json'])).stdout) as Array<{ identity: string; state: string }>;
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
