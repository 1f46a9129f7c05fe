import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { bottleStatus, stateName } from '../../src/machines/index.js';
import { mintIdentity } from '../../src/shared/identity.js';
import { currentState, openBottleLog, type BottleLog } from '../../src/engine/bottle-log.js';
import { commandJobId, openQueue } from '../../src/engine/queues.js';
import { runWorker } from '../../src/worker/worker.js';
import { exitKey, fakeEffects } from '../support/fake-effects.js';
import { fakePlan } from '../support/fake-plan.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

const repo = resolve(import.meta.dirname, '..', '..');
const bundleDir = join(repo, '.bottle-test', `fake-worker-${randomUUID()}`);
const bundle = join(bundleDir, 'fake-worker.mjs');
let redis: TestRedis;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  mkdirSync(bundleDir, { recursive: true });
  await build({
    entryPoints: [join(repo, 'test/support/fake-worker-main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: bundle,
    logLevel: 'silent',
  });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.destroy();
  rmSync(bundleDir, { recursive: true, force: true });
});

async function spawnWorker(delays: Record<string, number> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bundle], {
    cwd: repo,
    env: { ...process.env, TEST_REDIS_SOCKET: redis.socket, FAKE_DELAYS: JSON.stringify(delays) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  await new Promise<void>((resolveReady, reject) => {
    child.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && resolveReady());
    child.once('exit', (code) => reject(new Error(`fake worker exited early (${code})`)));
  });
  return child;
}

async function killHard(child: ChildProcess) {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function waitFor(log: BottleLog, identity: string, type: string, timeoutMs = 60_000): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await log.read(identity);
    if (events.some((e) => e.type === type)) return events;
    if (Date.now() > deadline) throw new Error(`${identity}: no ${type}; saw ${events.map((e) => e.type).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the bottle's top-level state is `name` (the launch's regions may finish in any order). */
async function waitForState(log: BottleLog, identity: string, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { state } = await currentState(log, identity);
    if (stateName(state) === name) return;
    if (Date.now() > deadline) throw new Error(`${identity}: not ${name}; is ${bottleStatus(state)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(identity: string) {
  const queue = openQueue(redis.connect());
  const id = randomUUID();
  const event = { type: 'bottle.start_requested', data: { plan: fakePlan(identity) } };
  await queue.add('command', { identity, command_id: id, event }, { jobId: commandJobId(identity, id) });
  await queue.close();
}

describe('reliability', () => {
  it('SIGKILL of the worker mid-effect: the job runs again elsewhere, no event duplicated or lost', async () => {
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('crash');
    const first = await spawnWorker({ build_image: 2000 });
    await start(identity);
    await waitFor(log, identity, 'bottle.prepared');
    await killHard(first); // build_image is in flight
    const second = await spawnWorker();
    await waitForState(log, identity, 'running');
    await killHard(second); // watch_agent is in flight
    await spawnWorker();
    await redis.connect().set(exitKey(identity), '0');
    const events = await waitFor(log, identity, 'bottle.cleaned');
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const lifecycle = events.filter((e) => !e.type.startsWith('egress.')).map((e) => e.type);
    const preLaunch = ['bottle.start_requested', 'bottle.prepared', 'image.built', 'network.created'];
    expect(lifecycle.slice(0, 4)).toEqual(preLaunch);
    // The launch's starts finish in any order; the gateway is ready only after it started.
    const launch = lifecycle.slice(4, 7);
    expect([...launch].sort()).toEqual(['agent.started', 'gateway.ready', 'gateway.started']);
    expect(launch.indexOf('gateway.started')).toBeLessThan(launch.indexOf('gateway.ready'));
    expect(lifecycle.slice(7)).toEqual(['agent.exited', 'transcript.snapshotted', 'bottle.cleaned']);
  });

  it('SIGTERM hands a long effect back to the queue: the worker exits promptly, records no failure', async () => {
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('term');
    const first = await spawnWorker();
    await start(identity);
    await waitForState(log, identity, 'running'); // watch_agent is now in flight on `first`
    const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    const t0 = Date.now();
    first.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await spawnWorker();
    await redis.connect().set(exitKey(identity), '0');
    const events = await waitFor(log, identity, 'bottle.cleaned');
    expect(events.filter((e) => e.type === 'effect.failed')).toEqual([]);
    expect(events.filter((e) => e.type === 'agent.exited')).toHaveLength(1);
  });

  it('restarting Redis between two commands loses no event (append-only file)', async () => {
    const handlers = fakeEffects({ redis: redis.connect() });
    const worker = await runWorker({ connect: () => redis.connect(), handlers, concurrency: 8 });
    try {
      const log = openBottleLog(redis.connect());
      const identity = mintIdentity('aof');
      await start(identity);
      await waitForState(log, identity, 'running');
      const before = await log.read(identity);
      await redis.stop();
      await redis.start();
      const afterRestart = await log.read(identity);
      expect(afterRestart.slice(0, before.length)).toEqual(before);
      await redis.connect().set(exitKey(identity), '1');
      const events = await waitFor(log, identity, 'bottle.preserved');
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    } finally {
      await worker.close();
    }
  });
});
