import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBottleResources } from '../../src/effects/docker/teardown.js';
import { LABELS, resourceNames } from '../../src/shared/names.js';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  REPO,
  startHarness,
  type BottleHarness,
  type CliResult,
} from '../support/cli-harness.js';
import { startSecondDaemon, type SecondDaemon } from '../support/second-daemon.js';

/**
 * Two Docker hosts on one Redis: host A is this machine's daemon, host B a
 * second dockerd (test/support/second-daemon.ts) that B's worker reaches
 * only through DOCKER_HOST. A bottle pinned to B is built, networked and run
 * on B's daemon alone; while B has no worker its bottles wait (A takes none
 * of their effects); B's worker coming back finishes them, and neither
 * daemon keeps anything of them.
 */

let h: BottleHarness;
let b: SecondDaemon;
const suffix = randomBytes(3).toString('hex');
const hostA = `cb-2h-a-${suffix}`;
const hostB = `cb-2h-b-${suffix}`;
const workers = new Set<ChildProcess>();
const identities = { a: [] as string[], b: [] as string[] };
let manifest: string;

// No network needed to build it: the second daemon reaches nothing but this machine.
const BARE_DOCKERFILE =
  'FROM debian:bookworm-slim\n' +
  'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --home-dir /home/node node\n' +
  'USER node\nWORKDIR /home/node\n';

function startWorker(hostId: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, [BOTTLE_BIN, 'worker', '--host', hostId], {
    cwd: REPO,
    env: { ...h.env, ...env },
    stdio: 'ignore',
  });
  workers.add(child);
  child.once('exit', () => workers.delete(child));
  return child;
}

const startWorkerA = () => startWorker(hostA);
const startWorkerB = () => startWorker(hostB, { DOCKER_HOST: b.dockerHost });

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

async function listed(identity: string): Promise<{ state: string; host: string } | undefined> {
  const res = await h.cli(['list', '--format', 'json']);
  const rows = JSON.parse(res.stdout) as Array<{ identity: string; state: string; host: string }>;
  return rows.find((r) => r.identity === identity);
}

async function liveHosts(): Promise<Array<{ id: string; engine: string }>> {
  const res = await h.cli(['hosts', '--format', 'json']);
  return JSON.parse(res.stdout) as Array<{ id: string; engine: string }>;
}

const isLive = async (hostId: string) => (await liveHosts()).some((x) => x.id === hostId);

async function start(host: string): Promise<string> {
  const res = await h.cli(['--manifest', manifest, 'start', 'pinned', '--host', host, '--detach']);
  expect(res.code, show(res)).toBe(0);
  return identityFrom(res);
}

/** What a daemon holds of a bottle: its containers (by role) and networks, found by label. */
async function held(docker: Docker, identity: string): Promise<{ containers: string[]; networks: string[] }> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const containers = await docker.listContainers({ all: true, filters });
  const networks = await docker.listNetworks({ filters });
  return {
    containers: containers.map((c) => c.Labels[LABELS.role] ?? c.Names[0]).sort(),
    networks: networks.map((n) => n.Name).sort(),
  };
}

const nothing = { containers: [], networks: [] };

beforeAll(async () => {
  h = await startHarness();
  b = await startSecondDaemon({ shutdownTimeoutSeconds: 5 });
  manifest = h.writeManifest(
    {
      bottles: [
        { name: 'bare', dockerfile: './bare.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
      ],
      agents: [{ name: 'pinned', bottle: 'bare', command: ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'] }],
    },
    { 'bare.Dockerfile': BARE_DOCKERFILE },
  );
}, 180_000);

afterAll(async () => {
  for (const child of [...workers]) await stopWorker(child);
  if (b) for (const identity of identities.b) await removeBottleResources(b.docker, identity).catch(() => undefined);
  await h?.cleanup();
  await b?.stop();
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
      containers: ['agent', 'gateway'],
      networks: [resourceNames(identity).egressNetwork, resourceNames(identity).internalNetwork].sort(),
    });
    for (const identity of identities.b) {
      expect(await held(b.docker, identity), identity).toEqual(everything(identity));
      expect(await held(h.docker, identity), identity).toEqual(nothing);
      expect(await listed(identity)).toMatchObject({ host: hostB, state: expect.stringMatching(/^running/) });
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
    expect(await listed(onA)).toMatchObject({ host: hostA, state: expect.stringMatching(/^running/) });
  }, 360_000);

  it("B's bottles wait while B has no worker, A runs none of their effects, B's worker finishes them", async () => {
    const [waiting, other] = identities.b;
    const workerB = [...workers].find((w) => w.spawnargs.includes(hostB))!;
    await stopWorker(workerB);
    await until('host B gone', async () => !(await isLive(hostB)));
    for (const identity of identities.b) {
      const row = await until('the waiting note', async () => {
        const r = await listed(identity);
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
});
