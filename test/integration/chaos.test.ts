import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedServices, stopEmbeddedService } from '../../src/cli/local-worker.js';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { bottleStatus, stateName, type EffectKind } from '../../src/machines/index.js';
import { CREATED_BY, LABELS, resourceNames } from '../../src/shared/names.js';
import { storeId } from '../../src/event-store/store-id.js';
import { processAlive } from '../../src/shared/process-alive.js';
import { currentState, openBottleLog, type BottleLog } from '../../src/engine/bottle-log.js';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  REPO,
  startHarness,
  type BottleHarness,
} from '../support/cli-harness.js';
import { held } from '../support/docker.js';
import { startSecondDaemon, type SecondDaemon } from '../support/second-daemon.js';
import { show, until } from '../support/workers.js';

/**
 * Chaos: faults under real bottles (real Docker, real Redis, the real CLI and
 * workers), each bottle on a host of its own (a worker with its own host id)
 * so the cases run side by side and a SIGKILL hits one case only.
 *
 * - For each effect of a launch and of a teardown, the worker is SIGKILLed as
 *   it logs that it runs the effect (`effect <kind> <identity>`), and a new
 *   one started: the bottle ends as a fault-free run does, with the same
 *   events (none lost, none twice, no failure), and nothing left on Docker.
 * - The local worker a CLI started, SIGKILLed mid-launch and again just before
 *   a stop (its heartbeat still fresh), is restarted by the waiting command.
 * - A bottle whose host loses its worker: `start --detach` says which host and
 *   exits; the bottle carries on when a worker returns.
 * - SIGKILL of the embedded redis-server: no acknowledged event lost, the
 *   bottle carries on.
 * - dockerd (a second daemon, never the main one) killed and restarted under a
 *   running bottle: its effects wait for the daemon, the crash path runs, the
 *   state is kept, and resume works.
 */

let h: BottleHarness;
let manifest: string;
const suffix = randomBytes(3).toString('hex');
const children = new Set<ChildProcess>();
const FINAL_STATES = ['preserved', 'cleaned', 'failed'];
// Exits 0 on SIGTERM: a stop (docker stop) or the test's own TERM ends it cleanly; it says when it listens.
const AGENT = ['sh', '-c', 'trap "exit 0" TERM; echo armed; sleep 600 & wait'];

// No network needed to build it: the second daemon reaches nothing but this machine.
const BARE_DOCKERFILE =
  'FROM debian:bookworm-slim\n' +
  'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --home-dir /home/node node\n' +
  'USER node\nWORKDIR /home/node\n';

interface WorkerProc {
  child: ChildProcess;
  host: string;
  env: NodeJS.ProcessEnv;
  lines: string[];
  waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }>;
}

/** Every worker this file spawned: the cases run side by side on one event store. */
const spawned: WorkerProc[] = [];

async function spawnWorker(host: string, env: NodeJS.ProcessEnv = {}): Promise<WorkerProc> {
  const child = spawn(process.execPath, [BOTTLE_BIN, 'worker', '--host', host], {
    cwd: REPO,
    env: { ...h.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const w: WorkerProc = { child, host, env, lines: [], waiters: [] };
  spawned.push(w);
  createInterface({ input: child.stderr! }).on('line', (line) => {
    w.lines.push(line);
    for (const waiter of [...w.waiters]) {
      const m = line.match(waiter.re);
      if (m) {
        w.waiters.splice(w.waiters.indexOf(waiter), 1);
        waiter.resolve(m);
      }
    }
  });
  await logLine(w, /worker ready/);
  return w;
}

/** The first line of the worker's log matching `re`, seen already or to come. */
function logLine(w: WorkerProc, re: RegExp): Promise<RegExpMatchArray> {
  for (const line of w.lines) {
    const m = line.match(re);
    if (m) return Promise.resolve(m);
  }
  return new Promise((resolve, reject) => {
    w.waiters.push({ re, resolve });
    const said = () => w.lines.slice(-5).join('\n');
    w.child.once('exit', () =>
      setTimeout(() => reject(new Error(`worker ${w.host} exited before ${re}:\n${said()}`)), 100),
    );
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** The cases run side by side with workers being killed: a wait gets more room than the shared default. */
const WAIT_MS = 180_000;

/** One log reader per harness (a connection each), for the polling below. */
const logs = new Map<BottleHarness, BottleLog>();
function logOf(harness: BottleHarness): BottleLog {
  if (!logs.has(harness)) logs.set(harness, openBottleLog(harness.redis.connect()));
  return logs.get(harness)!;
}

async function stateOf(harness: BottleHarness, identity: string): Promise<string> {
  return bottleStatus((await currentState(logOf(harness), identity)).state);
}

/** Waits until the bottle has ended (preserved, cleaned or failed); returns its state's name. */
async function ended(harness: BottleHarness, identity: string, timeoutMs = WAIT_MS): Promise<string> {
  const log = logOf(harness);
  try {
    return await until(
      `${identity} to end`,
      async () => {
        const name = stateName((await currentState(log, identity)).state);
        return FINAL_STATES.includes(name) && name;
      },
      timeoutMs,
    );
  } catch (err) {
    const seen = (await log.read(identity)).map(
      (e) => `${e.type} ${e.type === 'effect.failed' ? JSON.stringify(e.data) : ''}`,
    );
    throw new Error(`${(err as Error).message}; saw:\n${seen.join('\n')}`);
  }
}

const running = (harness: BottleHarness, identity: string) =>
  until(`${identity} running`, async () => (await stateOf(harness, identity)).startsWith('running'), WAIT_MS);

/** The subnets the bottle's networks were given that a network on the daemon still holds. */
async function subnetsHeld(docker: Docker, events: LifecycleEvent[]): Promise<string[]> {
  const created = events.filter((e) => e.type === 'network.created');
  const given = created.flatMap((e) => Object.values((e.data as { subnets?: Record<string, string> }).subnets ?? {}));
  const inUse = new Set<string>();
  for (const n of await docker.listNetworks()) {
    for (const c of (n.IPAM?.Config ?? []) as Array<{ Subnet?: string }>) if (c.Subnet) inUse.add(c.Subnet);
  }
  return given.filter((s) => inUse.has(s));
}

/** The lifecycle's event types in a comparable order (a launch's starts finish in any order). */
/**
 * Once a launch has failed its teardown removes the gateway, so a readiness wait still under way then
 * fails as well, and one already done has recorded gateway.ready: which of the two depends on timing,
 * with or without a fault.
 */
const isReadinessOutcome = (e: LifecycleEvent) =>
  e.type === 'gateway.ready' ||
  (e.type === 'effect.failed' && (e.data as { effect: string }).effect === 'await_gateway_ready');

const lifecycleTypes = (events: LifecycleEvent[]) =>
  events
    .filter((e) => !isReadinessOutcome(e))
    .map((e) => e.type)
    .filter((t) => !t.startsWith('egress.'))
    .sort();

type Flow = 'stop' | 'exit' | 'fail';
const AGENT_OF: Record<Flow, string> = { stop: 'chaos', exit: 'chaos', fail: 'chaos-fail' };
const FINAL_OF: Record<Flow, string> = { stop: 'preserved', exit: 'cleaned', fail: 'failed' };
// No pipelock image can be here (nothing is pulled): its launch fails for good and is torn down.
const MISSING_PIPELOCK = 'claude-bottle-test/no-such-pipelock:0';
const LAUNCH_KINDS: EffectKind[] = [
  'prepare_state',
  'build_image',
  'create_networks',
  'start_gateway',
  'await_gateway_ready',
  'start_agent',
  'start_netwatch',
  'watch_agent',
  'watch_sidecars',
];

interface Run {
  identity: string;
  final: string;
  events: LifecycleEvent[];
}

/**
 * One bottle from start to its end on a host of its own: `stop` stops it with
 * `bottle stop`, `exit` has its agent exit 0 (SIGTERM from the test), `fail`
 * launches with a pipelock image that is not there (a permanent failure). With
 * `faultAt`, the host's worker is SIGKILLed as it starts that effect, and a
 * new worker started for the host.
 */
async function runBottle(flow: Flow, faultAt?: EffectKind): Promise<Run> {
  const host = `cb-chaos-${flow}-${faultAt ?? 'none'}-${suffix}`;
  let worker = await spawnWorker(host);
  let recovered: Promise<void> | undefined;
  let fired = false;
  const arm = (kind: EffectKind) => {
    const victim = worker;
    recovered = (async () => {
      await logLine(victim, new RegExp(`effect ${kind} \\S+ `));
      fired = true;
      await killHard(victim.child);
      worker = await spawnWorker(host);
    })();
  };
  try {
    const duringLaunch = flow === 'fail' || LAUNCH_KINDS.includes(faultAt!);
    if (faultAt && duringLaunch) arm(faultAt);
    const started = await h.cli(['--manifest', manifest, 'start', AGENT_OF[flow], '--host', host, '--detach']);
    const identity = identityFrom(started);
    // Under load the new worker can take longer to come up than the killed one's heartbeat lives on:
    // the detached start then says no worker serves the host and leaves; the launch carries on once one does.
    const leftUnserved = /no live worker serves host \S+; not waiting \(--detach\)/.test(started.stderr);
    const leftEarly = faultAt !== undefined && duringLaunch && leftUnserved;
    expect(started.code, show(started)).toBe(flow === 'fail' || leftEarly ? 1 : 0);
    if (flow !== 'fail') {
      await recovered;
      await running(h, identity);
    }
    if (faultAt && !duringLaunch) arm(faultAt);
    if (flow === 'fail') {
      // Its launch ends by itself.
    } else if (flow === 'stop') {
      const stopped = await h.cli(['stop', identity]);
      expect(stopped.code, show(stopped)).toBe(0);
    } else {
      const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
      await until(
        'the agent listening for SIGTERM',
        async () => String(await agent.logs({ stdout: true })).includes('armed'),
        WAIT_MS,
      );
      await agent.kill({ signal: 'SIGTERM' });
    }
    const final = await ended(h, identity);
    if (faultAt && !fired) throw new Error(`${identity} ended ${final} without running ${faultAt}`);
    await recovered;
    return { identity, final, events: await h.log.read(identity) };
  } finally {
    // A test that failed before awaiting it leaves it to reject when the worker ends: not unhandled.
    recovered?.catch(() => undefined);
    await stopWorker(worker.child);
  }
}

const baselines = new Map<Flow, Promise<Run>>();
const baseline = (flow: Flow) => {
  if (!baselines.has(flow)) baselines.set(flow, runBottle(flow));
  return baselines.get(flow)!;
};

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest(
    {
      bottles: [
        { name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        { name: 'bare', dockerfile: './bare.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        {
          name: 'nopipe',
          egress: { allow: ['example.test'], proxy: 'pipelock', pipelock_image: MISSING_PIPELOCK },
          extra_hosts: PIN_DEFAULT_HOSTS,
        },
      ],
      agents: [
        { name: 'chaos', bottle: 'box', command: AGENT },
        { name: 'chaos-fail', bottle: 'nopipe', command: AGENT },
        // Ends by a signal, as an agent does when its container is stopped under it: the crash path.
        { name: 'chaos-bare', bottle: 'bare', command: ['sh', '-c', 'trap "exit 143" TERM; sleep 600 & wait'] },
      ],
    },
    { 'bare.Dockerfile': BARE_DOCKERFILE },
  );
}, 120_000);

afterAll(async () => {
  for (const child of [...children]) await killHard(child);
  await h?.cleanup();
}, 120_000);

const cases: Array<{ flow: Flow; kind: EffectKind }> = [
  ...LAUNCH_KINDS.map((kind) => ({ flow: 'stop' as const, kind })),
  { flow: 'stop', kind: 'stop_agent' },
  { flow: 'stop', kind: 'snapshot_transcript' },
  { flow: 'stop', kind: 'preserve' },
  { flow: 'exit', kind: 'cleanup' },
  { flow: 'fail', kind: 'start_pipelock' },
  { flow: 'fail', kind: 'teardown_failed' },
];

/** A run's failures, as the machine reads them. */
const failuresOf = (run: Run) =>
  run.events
    .filter((e) => e.type === 'effect.failed')
    .map((e) => e.data as { effect: string; permanent: boolean })
    .map(({ effect, permanent }) => ({ effect, permanent }));

describe.concurrent('chaos', () => {
  it.each(cases)(
    'SIGKILL of the worker during $kind ($flow): ends as without the fault',
    async ({ flow, kind }) => {
      const [faulty, clean] = await Promise.all([runBottle(flow, kind), baseline(flow)]);
      expect(faulty.final).toBe(clean.final);
      expect(faulty.final).toBe(FINAL_OF[flow]);
      const { events } = faulty;
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      // None but the failure a fault-free run has too (the missing pipelock image), and the readiness
      // wait's outcome, which is timing (isReadinessOutcome).
      const failures = (run: Run) => failuresOf(run).filter((f) => f.effect !== 'await_gateway_ready');
      expect(failures(faulty)).toEqual(failures(clean));
      expect(lifecycleTypes(events)).toEqual(lifecycleTypes(clean.events));
      expect(await held(h.docker, faulty.identity)).toEqual({ containers: [], networks: [] });
      expect(await subnetsHeld(h.docker, events)).toEqual([]);
    },
    300_000,
  );

  it('the local worker a CLI started is restarted by the command waiting on it, at once', async () => {
    const local = await startHarness();
    try {
      const m = local.writeManifest({
        bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
        agents: [{ name: 'chaos', bottle: 'box', command: AGENT }],
      });
      const paths = { log: join(local.home, 'worker', 'worker.log'), pid: join(local.home, 'worker', 'worker.pid') };
      const workerPid = () => Number(readFileSync(paths.pid, 'utf8').trim());
      const starting = local.cli(['--manifest', m, 'start', 'chaos', '--detach']);
      // SIGKILL mid-launch: the start that waits for it to run restarts the worker.
      await until(
        'create_networks in the worker log',
        async () => {
          return existsSync(paths.log) && /effect create_networks /.test(readFileSync(paths.log, 'utf8'));
        },
        WAIT_MS,
      );
      const first = workerPid();
      process.kill(first, 'SIGKILL');
      const started = await starting;
      expect(started.code, show(started)).toBe(0);
      expect(started.stderr).toContain(`the local worker (pid ${first}) is gone; starting it again`);
      const identity = identityFrom(started);
      expect(await stateOf(local, identity)).toMatch(/^running/);

      // SIGKILL again, then stop at once: the dead worker's heartbeat is still fresh.
      const second = workerPid();
      expect(second).not.toBe(first);
      process.kill(second, 'SIGKILL');
      await until('the worker gone', async () => !processAlive(second), WAIT_MS);
      const stopped = await local.cli(['stop', identity], { timeoutMs: 120_000 });
      expect(stopped.code, show(stopped)).toBe(0);
      expect(stopped.stderr).toContain(`the local worker (pid ${second}) is gone; starting it again`);
      expect(stopped.stdout).toContain(`stopped; resume with: bottle resume ${identity}`);
      expect(await held(local.docker, identity)).toEqual({ containers: [], networks: [] });
    } finally {
      await local.cleanup();
    }
  }, 300_000);

  it('a starting worker reconciles: a vanished agent takes the crash path, leftovers of ended bottles go', async () => {
    const host = `cb-chaos-reconcile-${suffix}`;
    const first = await spawnWorker(host);
    const started = await h.cli(['--manifest', manifest, 'start', 'chaos', '--host', host, '--detach']);
    expect(started.code, show(started)).toBe(0);
    const identity = identityFrom(started);
    await logLine(first, new RegExp(`effect watch_agent ${identity} `));
    await killHard(first.child);
    // While no worker runs: the agent's container vanishes, and a network is left by a bottle that ended.
    await h.docker.getContainer(resourceNames(identity).agentContainer).remove({ force: true });
    const store = await storeId(h.redis.connect());
    const endedBottle = (await baseline('stop')).identity;
    const leftover = await h.docker.createNetwork({
      Name: `cb-chaos-leftover-${suffix}`,
      Labels: { [LABELS.createdBy]: CREATED_BY, [LABELS.identity]: endedBottle, [LABELS.store]: store },
    });
    const again = await spawnWorker(host);
    try {
      expect(await ended(h, identity)).toBe('preserved');
      const events = await h.log.read(identity);
      expect(events.find((e) => e.type === 'agent.exited')?.data).toEqual({ code: -1, signal: null });
      expect(events.find((e) => e.type === 'bottle.preserved')?.data).toMatchObject({ reason: 'crash' });
      expect(events.filter((e) => e.type === 'effect.failed')).toEqual([]);
      expect(await held(h.docker, identity)).toEqual({ containers: [], networks: [] });
      await expect(h.docker.getNetwork(leftover.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
      // Leftovers are the event store's, not the host's: a worker another case starts meanwhile
      // on the same store may be the one whose reconcile removes it, and says so.
      const removal = new RegExp(`reconcile: removed leftovers .*cb-chaos-leftover-${suffix}`);
      const saidBy = async () => spawned.some((w) => w.lines.some((line) => removal.test(line)));
      await until(`a worker's log naming cb-chaos-leftover-${suffix}`, saidBy, 10_000);
    } finally {
      await stopWorker(again.child);
      await h.docker
        .getNetwork(leftover.id)
        .remove()
        .catch(() => undefined);
    }
  }, 300_000);

  it('a host without a live worker: start --detach says so and exits, stop says so and waits', async () => {
    const host = `cb-chaos-detach-${suffix}`;
    const worker = await spawnWorker(host);
    const killed = logLine(worker, /effect create_networks /).then(() => killHard(worker.child));
    const started = await h.cli(['--manifest', manifest, 'start', 'chaos', '--host', host, '--detach']);
    await killed;
    const identity = identityFrom(started);
    expect(started.code, show(started)).toBe(1);
    expect(started.stderr).toContain(`${identity}: no live worker serves host ${host}; not waiting (--detach)`);

    // A stop waits visibly, and carries on when the host's worker returns.
    const stopping = spawn(process.execPath, [BOTTLE_BIN, 'stop', identity], {
      cwd: REPO,
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(stopping);
    const said = { stdout: '', stderr: '' };
    stopping.stdout!.on('data', (b: Buffer) => (said.stdout += b.toString()));
    stopping.stderr!.on('data', (b: Buffer) => (said.stderr += b.toString()));
    const stopExit = new Promise<number | null>((resolve) => stopping.once('exit', (code) => resolve(code)));
    const waiting = `${identity}: no live worker serves host ${host}; waiting; it carries on when one does`;
    await until('the stop saying it waits', async () => said.stderr.includes(waiting), WAIT_MS);
    const again = await spawnWorker(host);
    try {
      expect(await stopExit, said.stderr).toBe(0);
      expect(said.stderr.split(waiting)).toHaveLength(2);
      expect(said.stderr).toContain(`a live worker serves ${identity}'s host again`);
      expect(said.stdout).toContain(`stopped; resume with: bottle resume ${identity}`);
      expect(await ended(h, identity)).toBe('preserved');
      expect(await held(h.docker, identity)).toEqual({ containers: [], networks: [] });
    } finally {
      await stopWorker(again.child);
    }
  }, 300_000);

  it('SIGKILL of the embedded redis-server loses no acknowledged event; the bottle carries on', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cb-chaos-home-'));
    const env = { CLAUDE_BOTTLE_HOME: home, REDIS_URL: undefined };
    let identity: string | undefined;
    const conn = new Redis({ path: join(home, 'redis', 'redis.sock'), lazyConnect: true, maxRetriesPerRequest: 1 });
    conn.on('error', () => undefined);
    try {
      const started = await h.cli(['--manifest', manifest, 'start', 'chaos', '--detach'], { env });
      expect(started.code, show(started)).toBe(0);
      identity = identityFrom(started);
      await conn.connect();
      const log = openBottleLog(conn);
      const isRunning = async () => bottleStatus((await currentState(log, identity!)).state).startsWith('run');
      await until('running', isRunning, WAIT_MS);
      const before = await log.read(identity);
      const redisPid = Number(readFileSync(join(home, 'redis', 'redis.pid'), 'utf8').trim());
      process.kill(redisPid, 'SIGKILL');
      await until('redis-server gone', async () => !processAlive(redisPid), WAIT_MS);

      // The next command starts redis-server again from its append-only file; the worker reconnects.
      const stopped = await h.cli(['stop', identity], { env, timeoutMs: 120_000 });
      expect(stopped.code, show(stopped)).toBe(0);
      const after = await log.read(identity);
      expect(after.slice(0, before.length)).toEqual(before);
      expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => i + 1));
      expect(after.at(-1)?.type).toBe('bottle.preserved');
      expect(await held(h.docker, identity)).toEqual({ containers: [], networks: [] });
    } finally {
      conn.disconnect();
      const services = embeddedServices({ ...process.env, CLAUDE_BOTTLE_HOME: home });
      for (const svc of services) await stopEmbeddedService(svc);
      if (identity) await removeBottleResources(h.docker, identity).catch(() => undefined);
      rmSync(home, { recursive: true, force: true });
    }
  }, 300_000);

  it('dockerd killed, then stopped, under a running bottle: effects wait, the state is kept, resume works', async ({
    onTestFailed,
  }) => {
    let b: SecondDaemon | undefined;
    let worker: WorkerProc | undefined;
    let identity: string | undefined;
    onTestFailed(() => console.error(`worker log:\n${worker?.lines.slice(-60).join('\n')}\n${b?.logTail(30)}`));
    try {
      b = await startSecondDaemon({ shutdownTimeoutSeconds: 5 });
      const host = `cb-chaos-dockerd-${suffix}`;
      worker = await spawnWorker(host, { DOCKER_HOST: b.dockerHost });
      const started = await h.cli(['--manifest', manifest, 'start', 'chaos-bare', '--host', host, '--detach']);
      expect(started.code, show(started)).toBe(0);
      identity = identityFrom(started);
      await running(h, identity);

      await b.restart({ signal: 'SIGKILL', downMs: 20_000 });
      expect(await ended(h, identity, 240_000)).toBe('preserved');
      const events = await h.log.read(identity);
      const failures = events.filter((e) => e.type === 'effect.failed').map((e) => e.data as { permanent: boolean });
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.filter((f) => f.permanent)).toEqual([]);
      const exit = events.find((e) => e.type === 'agent.exited');
      expect(exit).toBeDefined();
      const preserved = events.find((e) => e.type === 'bottle.preserved')!.data as { reason: string };
      expect(['crash', 'signal']).toContain(preserved.reason);
      expect(await held(b.docker, identity)).toEqual({ containers: [], networks: [] });

      const resumed = await h.cli(['--manifest', manifest, 'resume', identity, '--detach']);
      expect(resumed.code, show(resumed)).toBe(0);
      await running(h, identity);

      // dockerd stopped (SIGTERM, its containers stopped with it) for a while: the teardown that follows
      // the agent's exit waits for the daemon instead of spending its retries, and leaves nothing.
      const resumedAt = (await h.log.read(identity)).length;
      await b.restart({ signal: 'SIGTERM', downMs: 20_000 });
      expect(await ended(h, identity, 240_000)).toBe('preserved');
      const second = (await h.log.read(identity)).slice(resumedAt);
      expect(second.filter((e) => e.type === 'effect.failed' && (e.data as { permanent: boolean }).permanent)).toEqual(
        [],
      );
      expect(second.map((e) => e.type)).toContain('bottle.preserved');
      expect(await held(b.docker, identity)).toEqual({ containers: [], networks: [] });
    } finally {
      if (worker) await stopWorker(worker.child);
      if (b && identity) await removeBottleResources(b.docker, identity).catch(() => undefined);
      await b?.stop();
    }
  }, 420_000);
});
