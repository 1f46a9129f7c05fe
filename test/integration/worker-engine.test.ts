import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stampEvents } from '../../src/event-store/log.js';
import type { LifecycleEvent, NewEvent } from '../../src/events/schema.js';
import { bottleStatus, foldEvents, foldHistory, stateName, statesEqual } from '../../src/machines/index.js';
import { mintIdentity } from '../../src/shared/identity.js';
import { currentState, openBottleLog, type BottleLog } from '../../src/engine/bottle-log.js';
import { commandJobId, effectJobId, hostQueueNames, openQueue } from '../../src/engine/queues.js';
import { runWorker, type RunningWorker } from '../../src/worker/worker.js';
import { exitKey, fakeEffects, type FakeEffectsOptions } from '../support/fake-effects.js';
import { fakePlan } from '../support/fake-plan.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { launchSteps, preLaunchSteps, type Step } from '../golden/fixtures.js';

let redis: TestRedis;
const workers: RunningWorker[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
});
afterAll(async () => {
  await redis?.destroy();
});

async function startWorker(opts: Omit<FakeEffectsOptions, 'redis'> = {}) {
  const handlers = fakeEffects({ redis: redis.connect(), ...opts });
  const w = await runWorker({ connect: () => redis.connect(), handlers, concurrency: 16 });
  workers.push(w);
  return w;
}

async function enqueue(identity: string, type: string, data: Record<string, unknown>) {
  const queue = openQueue(redis.connect());
  const id = randomUUID();
  const job = { identity, command_id: id, event: { type, data } };
  await queue.add('command', job, { jobId: commandJobId(identity, id) });
  await queue.close();
}

/** Appends as a worker does (stamp, fold, append) but enqueues nothing: a worker that died right after appending. */
async function appendWithoutEnqueue(log: BottleLog, identity: string, steps: Step[]): Promise<void> {
  const { state, lastSeq } = await currentState(log, identity);
  const newEvents = steps.map(([type, data]) => ({ type, data }) as NewEvent);
  const events = stampEvents(lastSeq, newEvents, new Date().toISOString());
  await log.append(identity, lastSeq, events, foldEvents(state, events));
}

async function waitFor(log: BottleLog, identity: string, type: string, timeoutMs = 30_000): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await log.read(identity);
    if (events.some((e) => e.type === type)) return events;
    if (Date.now() > deadline) {
      throw new Error(`${identity}: no ${type} within ${timeoutMs} ms; saw ${events.map((e) => e.type).join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the bottle's top-level state is `name` (the launch's regions may finish in any order). */
async function waitForState(log: BottleLog, identity: string, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { state } = await currentState(log, identity);
    if (stateName(state) === name) return;
    if (Date.now() > deadline) {
      throw new Error(`${identity}: not ${name} within ${timeoutMs} ms; is ${bottleStatus(state)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const PRE_LAUNCH = ['bottle.start_requested', 'bottle.prepared', 'image.built', 'network.created'];

function expectLinear(events: LifecycleEvent[]) {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const lifecycle = events
    .filter((e) => !e.type.startsWith('egress.') && e.type !== 'effect.failed')
    .map((e) => e.type);
  const once = [
    ...PRE_LAUNCH,
    'gateway.started',
    'gateway.ready',
    'pipelock.started',
    'agent.started',
    'agent.exited',
    'transcript.snapshotted',
  ];
  for (const t of once) expect(lifecycle.filter((x) => x === t).length, `${t} appears once`).toBeLessThanOrEqual(1);
}

/** The launch's starts, in whatever order they finished; the gateway is ready only after it started. */
function expectParallelLaunch(types: string[], starts: string[]) {
  expect([...types].sort()).toEqual([...starts].sort());
  expect(types.indexOf('gateway.started')).toBeLessThan(types.indexOf('gateway.ready'));
}

describe('worker drives a bottle through the machine', () => {
  it('a clean exit ends cleaned, and replay of the log equals the live state', async () => {
    await startWorker();
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitForState(log, identity, 'running');
    await redis.connect().set(exitKey(identity), '0');
    const events = await waitFor(log, identity, 'bottle.cleaned');
    expectLinear(events);
    const types = events.map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(PRE_LAUNCH);
    expectParallelLaunch(types.slice(4, 7), ['gateway.started', 'gateway.ready', 'agent.started']);
    expect(types.slice(7)).toEqual(['egress.denied', 'agent.exited', 'transcript.snapshotted', 'bottle.cleaned']);
    expect(events.find((e) => e.type === 'gateway.started')?.data).toMatchObject({ legacy_launch: false });
    const live = await log.liveState(identity);
    expect(live && statesEqual(foldHistory(identity, events).state, live)).toBe(true);
    expect(bottleStatus(live!)).toBe('cleaned');
  });

  it('a pipelock plan starts pipelock alongside the gateway and the agent', async () => {
    await startWorker();
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    const plan = fakePlan(identity, { egress: { proxy: 'pipelock', pipelock_image: null } });
    await enqueue(identity, 'bottle.start_requested', { plan });
    await waitForState(log, identity, 'running');
    await redis.connect().set(exitKey(identity), '0');
    const events = await waitFor(log, identity, 'bottle.cleaned');
    expectLinear(events);
    const types = events.map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(PRE_LAUNCH);
    const starts = ['gateway.started', 'gateway.ready', 'pipelock.started', 'agent.started'];
    expectParallelLaunch(types.slice(4, 8), starts);
  });

  it.each([
    [1, 'crash'],
    [130, 'signal'],
    [137, 'signal'],
  ])('exit %i preserves the bottle (%s)', async (code, reason) => {
    await startWorker();
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitForState(log, identity, 'running');
    await redis.connect().set(exitKey(identity), String(code));
    const events = await waitFor(log, identity, 'bottle.preserved');
    const preserved = events.find((e) => e.type === 'bottle.preserved')!;
    expect(preserved.data).toMatchObject({ reason, resume_hint: `bottle resume ${identity}` });
    expect(bottleStatus((await log.liveState(identity))!)).toBe('preserved');
  });

  it('bottle stop preserves the bottle with reason stopped', async () => {
    await startWorker();
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitForState(log, identity, 'running');
    await enqueue(identity, 'bottle.stop_requested', { by: 'test' });
    const events = await waitFor(log, identity, 'bottle.preserved');
    expect(events.find((e) => e.type === 'bottle.preserved')!.data).toMatchObject({ reason: 'stopped' });
  });

  it('a transient effect failure is recorded and retried; the bottle still starts', async () => {
    await startWorker({ failures: { create_networks: 'transient' } });
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitForState(log, identity, 'running');
    const failed = (await log.read(identity)).filter((e) => e.type === 'effect.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].data).toMatchObject({ effect: 'create_networks', permanent: false });
    await redis.connect().set(exitKey(identity), '0');
    await waitFor(log, identity, 'bottle.cleaned');
  });

  it('a permanent effect failure tears down and ends failed, never stuck', async () => {
    await startWorker({ failures: { build_image: 'permanent' } });
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    const events = await waitFor(log, identity, 'bottle.failed');
    expect(events.map((e) => e.type)).toContain('effect.failed');
    expect(bottleStatus((await log.liveState(identity))!)).toBe('failed');
  });

  it('a permanent failure of one launch start still ends failed once the other start reports', async () => {
    await startWorker({ failures: { await_gateway_ready: 'permanent' } });
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    const events = await waitFor(log, identity, 'bottle.failed');
    expect(events.map((e) => e.type)).toContain('agent.started');
    expect(events.find((e) => e.type === 'bottle.failed')?.data).toMatchObject({ effect: 'await_gateway_ready' });
    expect(bottleStatus((await log.liveState(identity))!)).toBe('failed');
  });

  it('two workers racing over many bottles keep every history linear', async () => {
    await startWorker();
    await startWorker();
    const log = openBottleLog(redis.connect());
    const identities = Array.from({ length: 8 }, () => mintIdentity('race'));
    await Promise.all(identities.map((id) => enqueue(id, 'bottle.start_requested', { plan: fakePlan(id) })));
    await Promise.all(identities.map((id) => waitForState(log, id, 'running')));
    // Commands racing the worker's own appends on the same bottles.
    await Promise.all(identities.map((id) => enqueue(id, 'bottle.stop_requested', { by: 'race-a' })));
    await Promise.all(identities.map((id) => enqueue(id, 'bottle.stop_requested', { by: 'race-b' })));
    for (const id of identities) {
      const events = await waitFor(log, id, 'bottle.preserved');
      expectLinear(events);
    }
  });
});

describe('worker restart and bad jobs', () => {
  it('a restarted worker enqueues both launch starts of a bottle stuck after network.created', async () => {
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('stuck');
    const plan = fakePlan(identity);
    const first = await startWorker();
    // The first worker appended network.created and died before enqueueing what it requested.
    await appendWithoutEnqueue(log, identity, preLaunchSteps(identity, plan));
    await first.close();
    const { state } = await currentState(log, identity);
    expect(stateName(state)).toBe('launching');

    const calls: FakeEffectsOptions['calls'] = [];
    await startWorker({ calls });
    await waitForState(log, identity, 'running');
    const mine = calls.filter((c) => c.identity === identity).map((c) => c.kind);
    expect(mine.slice(0, 2).sort()).toEqual(['start_agent', 'start_gateway']);
    expect(mine).not.toContain('create_networks');
    // The bottle's effects are queued for the host its plan is pinned to.
    const queue = openQueue(redis.connect(), hostQueueNames(plan.host).effects);
    try {
      for (const kind of ['start_gateway', 'start_agent'] as const) {
        const job = await queue.getJob(effectJobId({ identity, causedBySeq: 4, kind }));
        expect(job?.data, `${kind} job`).toMatchObject({ kind, identity, causedBySeq: 4 });
      }
    } finally {
      await queue.close();
    }
    const types = (await log.read(identity)).map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(PRE_LAUNCH);
    expectParallelLaunch(types.slice(4, 7), ['gateway.started', 'gateway.ready', 'agent.started']);
    await redis.connect().set(exitKey(identity), '0');
    await waitFor(log, identity, 'bottle.cleaned');
  });

  it.each([
    ['an unknown kind', { kind: 'launch_everything', params: {} }, /unknown effect "launch_everything"/],
    [
      'params of the wrong shape',
      { kind: 'start_agent', params: { network: 'bridge' } },
      /effect start_agent for \S+: network: /,
    ],
  ])('an effect job with %s fails once with a clear message and appends nothing', async (_case, request, message) => {
    await startWorker();
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('badjob');
    const plan = fakePlan(identity);
    // A bottle that ran and was preserved: nothing pending, so only the bad job could append to it.
    await appendWithoutEnqueue(log, identity, [
      ...launchSteps(identity, plan),
      ['agent.exited', { code: 1, signal: null }],
      ['transcript.snapshotted', { files: 1, bytes: 1, missing: false }],
      ['bottle.preserved', { reason: 'crash', resume_hint: `bottle resume ${identity}` }],
    ]);
    const lastSeq = await log.lastSeq(identity);
    const queue = openQueue(redis.connect());
    try {
      const data = { ...request, identity, causedBySeq: lastSeq };
      const job = await queue.add('effect', data, { jobId: `bad.${identity}` });
      const deadline = Date.now() + 15_000;
      while (!['failed', 'completed'].includes(await job.getState()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const finished = (await queue.getJob(job.id!))!;
      expect(await finished.getState()).toBe('failed');
      expect(finished.failedReason).toMatch(message);
      // Unrecoverable: not retried, whatever the queue's attempts.
      expect(finished.attemptsMade).toBe(1);
    } finally {
      await queue.close();
    }
    expect(await log.lastSeq(identity)).toBe(lastSeq);
    expect(stateName((await currentState(log, identity)).state)).toBe('preserved');
  });
});
