import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import type { EgressView } from '../../src/cli/egress-view/fold.js';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { OcsfRecordSchema } from '../support/ocsf-schema.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/**
 * `bottle egress` and the OCSF export against a real bottle: the agent sends
 * a few requests, allowed to a local stand-in on the allowlist and denied to
 * another name, and the view shows exactly those hosts and counts, with the
 * bytes the gateway's traffic summary reported. Traffic goes only to
 * test-owned socat containers on this machine, reached by `.test` names.
 */

const BODY = 'hello-from-upstream';
let h: BottleHarness;
let upstream: Upstream;
let identity: string;

beforeAll(async () => {
  h = await startHarness();
  upstream = await startUpstream(h.docker, { body: BODY });
  const manifest = h.writeManifest({
    bottles: [
      {
        name: 'net',
        egress: { allow: [`upstream.test:${upstream.port}`] },
        extra_hosts: { 'upstream.test': 'host-gateway', 'blocked.test': 'host-gateway', ...PIN_DEFAULT_HOSTS },
      },
    ],
    agents: [{ name: 'sleeper', bottle: 'net', command: ['sleep', '600'] }],
  });
  const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach'], {
    env: { CLAUDE_BOTTLE_RUNTIME: 'runc' },
  });
  identity = identityFrom(started);
  await h.waitForEvent(identity, 'agent.started');
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  await upstream?.stop();
});

async function events(): Promise<LifecycleEvent[]> {
  const shown = await h.cli(['events', identity, '--format', 'json']);
  expect(shown.code).toBe(0);
  return shown.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LifecycleEvent);
}

it('shows exactly the hosts and counts the agent just caused, and exports them as valid OCSF', async () => {
  const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
  const curl = (...args: string[]) =>
    execIn(agent, ['curl', '-sS', '-o', '/dev/null', '--max-time', '15', ...args], { user: 'node' });
  const url = `http://upstream.test:${upstream.port}/`;
  await curl(url);
  await curl(url);
  // Through a CONNECT tunnel, served request by request inside it.
  await curl('--proxytunnel', url);
  await curl(`http://blocked.test:${upstream.port}/`);
  await curl(`https://blocked.test:${upstream.port}/`);

  // The gateway's summary arrives within its interval of the last request.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const log = await events();
    // Each summary carries the hosts that changed since the one before: the latest of each host counts.
    const latest = new Map<string, { allowed: number; denied: number }>();
    for (const e of log) if (e.type === 'egress.summary') for (const x of e.data.hosts) latest.set(x.host, x);
    const summarised = latest.get('upstream.test')?.allowed === 3 && latest.get('blocked.test')?.denied === 2;
    if (summarised) break;
    if (Date.now() > deadline) {
      const egress = log.filter((e) => e.type.startsWith('egress.')).map((e) => JSON.stringify(e.data));
      throw new Error(`no traffic summary with the requests sent:\n${egress.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }

  const shown = await h.cli(['egress', identity, '--format', 'json']);
  expect(shown.code).toBe(0);
  const view = JSON.parse(shown.stdout) as EgressView & { identity: string };
  expect(view.identity).toBe(identity);
  expect(view.hosts.map((x) => x.host).sort()).toEqual(['blocked.test', 'upstream.test']);
  const allowed = view.hosts.find((x) => x.host === 'upstream.test')!;
  expect(allowed).toMatchObject({ allowed: 3, denied: 0, bytes_up: 0, bytes_down: 3 * BODY.length });
  expect(allowed.methods).toEqual(['GET']);
  expect(view.hosts.find((x) => x.host === 'blocked.test')).toMatchObject({
    allowed: 0,
    denied: 2,
    bytes_up: 0,
    bytes_down: 0,
    methods: ['CONNECT', 'GET'],
  });
  expect(view.decisions.map((d) => `${d.decision} ${d.method} ${d.host}`)).toEqual([
    'allowed GET upstream.test',
    'allowed GET upstream.test',
    'allowed GET upstream.test',
    'denied GET blocked.test',
    'denied CONNECT blocked.test',
  ]);

  const text = await h.cli(['egress', identity]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/upstream\.test\s+3\s+0\s+0 B\s+57 B\s+GET/);

  const ocsf = await h.cli(['events', identity, '--format', 'ocsf']);
  expect(ocsf.code).toBe(0);
  const records = ocsf.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(records).toHaveLength(5);
  for (const record of records) expect(OcsfRecordSchema.safeParse(record).error?.issues ?? []).toEqual([]);
  expect(records.map((r) => [r.class_uid, r.activity_id, r.action_id])).toEqual([
    [4002, 3, 1],
    [4002, 3, 1],
    [4002, 3, 1],
    [4002, 3, 2],
    [4002, 1, 2],
  ]);
}, 120_000);

it('refuses an unknown bottle in one line', async () => {
  const missing = await h.cli(['egress', 'sleeper-zzzzz']);
  expect(missing.code).toBe(1);
  expect(missing.stderr.trim().split('\n')).toEqual([expect.stringContaining('no events for sleeper-zzzzz')]);
  const malformed = await h.cli(['egress', 'not an identity']);
  expect(malformed.code).toBe(2);
});
