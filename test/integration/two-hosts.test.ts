import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { resourceNames } from '../../src/shared/names.js';
import { hostKeyPath } from '../../src/worker/host-key.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { held } from '../support/docker.js';
import { hostIsLive, listedBottle, show, TestWorkers, until } from '../support/workers.js';
import { startSecondDaemon, type SecondDaemon } from '../support/second-daemon.js';

/**
 * Two Docker hosts on one Redis: host A is this machine's daemon, host B a
 * second dockerd (test/support/second-daemon.ts) that B's worker reaches
 * only through DOCKER_HOST. A bottle pinned to B is built, networked and run
 * on B's daemon alone; while B has no worker its bottles wait (A takes none
 * of their effects); B's worker coming back finishes them, and neither
 * daemon keeps anything of them. A route secret sealed for B reaches B's
 * gateway; one sealed to a key B's worker no longer has fails the launch,
 * saying so.
 */

let h: BottleHarness;
let b: SecondDaemon;
const suffix = randomBytes(3).toString('hex');
const hostA = `cb-2h-a-${suffix}`;
const hostB = `cb-2h-b-${suffix}`;
const workers = new TestWorkers(() => h);
const identities = { a: [] as string[], b: [] as string[] };
let manifest: string;
let upstream: Server | undefined;
const upstreamSaw: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
const ROUTED_HOST = 'api.routed.test';
const TOKEN_ENV = 'TWO_HOSTS_ROUTE_TOKEN';

// Asks the gateway's credential port for the route (bash only: the bare image has no curl), then waits.
const ROUTE_CALLER = [
  'GW=${HTTP_PROXY#http://}; GW=${GW%%:*}',
  'exec 3<>/dev/tcp/$GW/3129',
  `printf 'GET /_host/${ROUTED_HOST}/two-hosts HTTP/1.0\\r\\nAuthorization: Bearer placeholder\\r\\n\\r\\n' >&3`,
  'head -1 <&3',
  'trap "exit 143" TERM; sleep 600 & wait',
].join('; ');

// No network needed to build it: the second daemon reaches nothing but this machine.
const BARE_DOCKERFILE =
  'FROM debian:bookworm-slim\n' +
  'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --home-dir /home/node node\n' +
  'USER node\nWORKDIR /home/node\n';

const startWorkerA = () => workers.start(hostA);
const startWorkerB = () => workers.start(hostB, { DOCKER_HOST: b.dockerHost });

async function liveHosts(): Promise<Array<{ id: string; engine: string }>> {
  const res = await h.cli(['hosts', '--format', 'json']);
  return JSON.parse(res.stdout) as Array<{ id: string; engine: string }>;
}

const isLive = (hostId: string) => hostIsLive(h, hostId);

async function start(host: string, agent = 'pinned', env: NodeJS.ProcessEnv = {}): Promise<string> {
  const res = await h.cli(['--manifest', manifest, 'start', agent, '--host', host, '--detach'], { env });
  expect(res.code, show(res)).toBe(0);
  return identityFrom(res);
}

const nothing = { containers: [], networks: [] };

beforeAll(async () => {
  h = await startHarness();
  b = await startSecondDaemon({ shutdownTimeoutSeconds: 5 });
  // Reached from daemon B's gateways at host-gateway, the second daemon's way to this machine.
  upstream = createServer((req, res) => {
    upstreamSaw.push({ url: req.url ?? '', headers: req.headers });
    res.end('routed upstream answered\n');
  });
  await new Promise<void>((resolve) => upstream!.listen(0, '0.0.0.0', resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  const route = {
    host: ROUTED_HOST,
    upstream: `http://${ROUTED_HOST}:${upstreamPort}`,
    token_env: TOKEN_ENV,
    auth: 'bearer',
  };
  manifest = h.writeManifest(
    {
      bottles: [
        { name: 'bare', dockerfile: './bare.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        {
          name: 'routed',
          dockerfile: './bare.Dockerfile',
          egress: { allow: [] },
          cred_proxy: { routes: [route] },
          extra_hosts: { ...PIN_DEFAULT_HOSTS, [ROUTED_HOST]: 'host-gateway' },
        },
      ],
      agents: [
        { name: 'pinned', bottle: 'bare', command: ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'] },
        { name: 'router', bottle: 'routed', command: ['bash', '-c', ROUTE_CALLER] },
        { name: 'quick', bottle: 'bare', command: ['bash', '-c', 'echo quick on B; exit 3'] },
      ],
    },
    { 'bare.Dockerfile': BARE_DOCKERFILE },
  );
}, 180_000);

afterAll(async () => {
  await workers.stopAll();
  if (b) for (const identity of identities.b) await removeBottleResources(b.docker, identity).catch(() => undefined);
  await h?.cleanup();
  await b?.stop();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
}, 180_000);

describe('two Docker hosts on one Redis', () => {
  it('each worker serves the daemon DOCKER_HOST names, and says so in its heartbeat', async () => {
    startWorkerA();
    startWorkerB();
    await until('both hosts live', async () => (await isLive(hostA)) && (await isLive(hostB)));
    const hosts = await liveHosts();
    const engineOf = (id: string) => hosts.find((x) => x.id === id)?.engine;
    expect(engineOf(hostA)).toBe((await h.docker.info()).ID);
    expect(engineOf(hostB)).toBe((await b.docker.info()).ID);
    expect(engineOf(hostA)).not.toBe(engineOf(hostB));
  });

  it('a bottle pinned to B is built and runs on daemon B alone; one pinned to A on A alone', async () => {
    identities.b.push(await start(hostB), await start(hostB));
    identities.a.push(await start(hostA));
    for (const identity of [...identities.a, ...identities.b]) await h.waitForEvent(identity, 'agent.started', 240_000);

    const everything = (identity: string) => ({
      containers: ['agent', 'gateway', 'netwatch'],
      networks: [resourceNames(identity).egressNetwork, resourceNames(identity).internalNetwork].sort(),
    });
    for (const identity of identities.b) {
      expect(await held(b.docker, identity), identity).toEqual(everything(identity));
      expect(await held(h.docker, identity), identity).toEqual(nothing);
      expect(await listedBottle(h, identity)).toMatchObject({ host: hostB, state: expect.stringMatching(/^running/) });
      const events = await h.log.read(identity);
      const requested = events.find((e) => e.type === 'bottle.start_requested')!;
      const plan = (requested.data as { plan: { host: string; image: { tag: string } } }).plan;
      expect(plan.host).toBe(hostB);
      // Built there: daemon B had only the base image to start with.
      await expect(b.docker.getImage(plan.image.tag).inspect()).resolves.toBeTruthy();
    }
    const [onA] = identities.a;
    expect(await held(h.docker, onA)).toEqual(everything(onA));
    expect(await held(b.docker, onA)).toEqual(nothing);
    expect(await listedBottle(h, onA)).toMatchObject({ host: hostA, state: expect.stringMatching(/^running/) });
  }, 360_000);

  it("B's bottles wait while B has no worker, A runs none of their effects, B's worker finishes them", async () => {
    const [waiting, other] = identities.b;
    const workerB = workers.serving(hostB)!;
    await workers.stop(workerB);
    await until('host B gone', async () => !(await isLive(hostB)));
    for (const identity of identities.b) {
      const row = await until('the waiting note', async () => {
        const r = await listedBottle(h, identity);
        return r?.state.includes(`waiting for host ${hostB}`) && r;
      });
      expect(row.state).toMatch(/^running/);
    }

    // A decides the stop; the effects it causes are B's, and nothing runs them while B is down.
    const stopping = h.cli(['stop', waiting]);
    await until('the stop request', async () =>
      (await h.log.read(waiting)).some((e) => e.type === 'bottle.stop_requested'),
    );
    await new Promise((r) => setTimeout(r, 5000));
    const agent = b.docker.getContainer(resourceNames(waiting).agentContainer);
    expect((await agent.inspect()).State.Running).toBe(true);
    const afterRequest = (await h.log.read(waiting)).map((e) => e.type);
    expect(afterRequest.slice(afterRequest.indexOf('bottle.stop_requested') + 1)).not.toContain('agent.exited');
    expect(await held(h.docker, waiting)).toEqual(nothing);

    startWorkerB();
    const stopped = await stopping;
    expect(stopped.code, show(stopped)).toBe(0);
    const events = await h.waitForEvent(waiting, 'bottle.preserved');
    expect(events.filter((e) => e.type === 'effect.failed')).toEqual([]);

    // The other bottle on B, and the one on A, stop as usual.
    for (const identity of [other, ...identities.a]) {
      const res = await h.cli(['stop', identity]);
      expect(res.code, show(res)).toBe(0);
      await h.waitForEvent(identity, 'bottle.preserved');
    }
    for (const identity of [...identities.a, ...identities.b]) {
      expect(await held(b.docker, identity), identity).toEqual(nothing);
      expect(await held(h.docker, identity), identity).toEqual(nothing);
    }
  }, 360_000);

  it("a route secret sealed for B reaches B's gateway, which injects it upstream", async () => {
    const secret = `tok_${randomBytes(16).toString('hex')}`;
    const identity = await start(hostB, 'router', { [TOKEN_ENV]: secret });
    identities.b.push(identity);
    await h.waitForEvent(identity, 'agent.started', 240_000);
    const call = await until('the routed call upstream', async () => upstreamSaw.find((r) => r.url === '/two-hosts'));
    expect(call.headers.authorization).toBe(`Bearer ${secret}`);
    expect(await held(b.docker, identity)).toMatchObject({ containers: ['agent', 'gateway', 'netwatch'] });
    expect(await held(h.docker, identity)).toEqual(nothing);
    expect(JSON.stringify(await h.log.read(identity))).not.toContain(secret);

    const res = await h.cli(['stop', identity]);
    expect(res.code, show(res)).toBe(0);
    await h.waitForEvent(identity, 'bottle.preserved');
    expect(await held(b.docker, identity)).toEqual(nothing);
  }, 360_000);

  it('an attached start on B, whose daemon this CLI does not reach, follows its events to the end', async () => {
    const res = await h.cli(['--manifest', manifest, 'start', 'quick', '--host', hostB]);
    const identity = /bottle ([a-z0-9_-]+-[0-9a-z]{5}): starting/.exec(res.stderr)?.[1];
    if (identity) identities.b.push(identity);
    expect(res.code, show(res)).toBe(3);
    const elsewhere = `runs on host ${hostB}, whose Docker daemon this machine does not reach`;
    expect(res.stderr).toContain(`${elsewhere}; run \`bottle attach ${identity}\` on that host`);
    const logs = await h.cli(['logs', identity!]);
    expect(logs.code, show(logs)).toBe(1);
    expect(logs.stderr.trim()).toBe(
      `bottle: ${identity} ${elsewhere}; run \`bottle logs ${identity}\` on that host ` +
        '(or set DOCKER_HOST to its daemon)',
    );
  }, 360_000);

  it("a bind-mounted working folder is a path on B: the CLI does not need it, B's daemon checks it", async () => {
    const missing = `/tmp/cb-only-on-b-${suffix}/proj`;
    const res = await h.cli(['--manifest', manifest, 'start', 'quick', '--host', hostB, '--cwd', missing]);
    const identity = /bottle ([a-z0-9_-]+-[0-9a-z]{5}): starting/.exec(res.stderr)?.[1];
    if (identity) identities.b.push(identity);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain(
      `the working folder ${missing} does not exist on host ${hostB}, where the bottle runs`,
    );
    expect(await held(b.docker, identity!)).toEqual(nothing);
  }, 240_000);

  it('cleanup asks the worker of each live host about its own daemon, or of the one host named', async () => {
    const both = await h.cli(['cleanup', '--dry-run']);
    expect(both.code, show(both)).toBe(0);
    const headers = both.stdout.split('\n').filter((line) => line.startsWith('host '));
    expect(headers).toEqual([`host ${hostA}:`, `host ${hostB}:`].sort());
    const onlyB = await h.cli(['cleanup', '--dry-run', '--host', hostB]);
    expect(onlyB.code, show(onlyB)).toBe(0);
    expect(onlyB.stdout).not.toMatch(/^host /m);
    const unknown = await h.cli(['cleanup', '--host', 'no-such-host']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe(
      'bottle: no live worker serves host no-such-host; `bottle hosts` lists the live ones',
    );
  }, 120_000);

  it("secrets sealed to B's old key do not open with its worker's new one: the launch fails, saying why", async () => {
    const workerB = workers.serving(hostB)!;
    // Frozen, it still counts as live: the start seals to the key it published, and the launch waits for it.
    workerB.kill('SIGSTOP');
    const known = new Set((await h.log.listBottles()).map((entry) => entry.identity));
    const starting = h.cli(['--manifest', manifest, 'start', 'router', '--host', hostB, '--detach'], {
      env: { [TOKEN_ENV]: `tok_${randomBytes(16).toString('hex')}` },
    });
    const identity = await until('the start request', async () => {
      const fresh = (await h.log.listBottles()).find((entry) => !known.has(entry.identity));
      return fresh && (await h.log.read(fresh.identity)).some((e) => e.type === 'bottle.start_requested') && fresh;
    }).then((entry) => entry.identity);
    identities.b.push(identity);
    // Its host's worker comes back with a new key pair.
    const killed = new Promise((resolve) => workerB.once('exit', resolve));
    workerB.kill('SIGKILL');
    await killed;
    rmSync(hostKeyPath(hostB, h.env));
    startWorkerB();
    const started = await starting;
    expect(started.stdout.split('\n')[0], show(started)).toBe(identity);
    expect(started.code, show(started)).toBe(1);

    const events = await h.waitForEvent(identity, 'bottle.failed', 240_000);
    const failures = events
      .filter((e) => e.type === 'effect.failed')
      .map((e) => e.data as { effect: string; error: string; permanent: boolean });
    expect(failures).toEqual([
      expect.objectContaining({
        effect: 'start_gateway',
        permanent: true,
        error: expect.stringMatching(/sealed to key \w+ of host .*now has key \w+; start or resume the bottle again/),
      }),
    ]);
    expect(events.some((e) => e.type === 'agent.started')).toBe(false);
    await until('its resources gone', async () => {
      const left = await held(b.docker, identity);
      return left.containers.length === 0 && left.networks.length === 0;
    });
    expect(await held(h.docker, identity)).toEqual(nothing);
    const shown = await h.cli(['events', identity]);
    expect(shown.stdout + shown.stderr).toMatch(
      /start or resume the bottle again so they are sealed to the current key/,
    );
  }, 360_000);
});
