import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../src/events/log.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { bottleStatus, foldHistory, statesEqual } from '../../src/machines/index.js';
import { mintIdentity } from '../../src/shared/identity.js';
import { commandJobId, openQueue } from '../../src/worker/queue.js';
import { runWorker, type RunningWorker } from '../../src/worker/worker.js';
import { exitKey, fakeEffects, type FakeEffectsOptions } from '../support/fake-effects.js';
import { fakePlan } from '../support/fake-plan.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

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
  const w = await runWorker({ connect: () => redis.connect(), handlers: fakeEffects({ redis: redis.connect(), ...opts }), concurrency: 16 });
  workers.push(w);
  return w;
}

async function enqueue(identity: string, type: string, data: Record<string, unknown>) {
  const queue = openQueue(redis.connect());
  const id = randomUUID();
  await queue.add('command', { identity, command_id: id, event: { type, data } }, { jobId: commandJobId(identity, id) });
  await queue.close();
}

async function waitFor(log: EventLog, identity: string, type: string, timeoutMs = 30_000): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await log.read(identity);
    if (events.some((e) => e.type === type)) return events;
    if (Date.now() > deadline) throw new Error(`${identity}: no ${type} within ${timeoutMs} ms; saw ${events.map((e) => e.type).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectLinear(events: LifecycleEvent[]) {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const lifecycle = events.filter((e) => !e.type.startsWith('egress.') && e.type !== 'effect.failed').map((e) => e.type);
  const once = ['bottle.start_requested', 'bottle.prepared', 'image.built', 'network.created', 'gateway.started', 'agent.started', 'agent.exited', 'transcript.snapshotted'];
  for (const t of once) expect(lifecycle.filter((x) => x === t).length, `${t} appears once`).toBeLessThanOrEqual(1);
}

describe('worker drives a bottle through the machine', () => {
  it('a clean exit ends cleaned, and replay of the log equals the live state', async () => {
    await startWorker();
    const log = new EventLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitFor(log, identity, 'agent.started');
    await redis.connect().set(exitKey(identity), '0');
    const events = await waitFor(log, identity, 'bottle.cleaned');
    expectLinear(events);
    expect(events.map((e) => e.type)).toEqual([
      'bottle.start_requested', 'bottle.prepared', 'image.built', 'network.created', 'gateway.started', 'agent.started',
      'egress.denied', 'agent.exited', 'transcript.snapshotted', 'bottle.cleaned',
    ]);
    const live = await log.liveState(identity);
    expect(live && statesEqual(foldHistory(identity, events).state, live)).toBe(true);
    expect(bottleStatus(live!)).toBe('cleaned');
  });

  it.each([[1, 'crash'], [130, 'signal'], [137, 'signal']])('exit %i preserves the bottle (%s)', async (code, reason) => {
    await startWorker();
    const log = new EventLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitFor(log, identity, 'agent.started');
    await redis.connect().set(exitKey(identity), String(code));
    const events = await waitFor(log, identity, 'bottle.preserved');
    const preserved = events.find((e) => e.type === 'bottle.preserved')!;
    expect(preserved.data).toMatchObject({ reason, resume_hint: `bottle resume ${identity}` });
    expect(bottleStatus((await log.liveState(identity))!)).toBe('preserved');
  });

  it('bottle stop preserves the bottle with reason stopped', async () => {
    await startWorker();
    const log = new EventLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    await waitFor(log, identity, 'agent.started');
    await enqueue(identity, 'bottle.stop_requested', { by: 'test' });
    const events = await waitFor(log, identity, 'bottle.preserved');
    expect(events.find((e) => e.type === 'bottle.preserved')!.data).toMatchObject({ reason: 'stopped' });
  });

  it('a transient effect failure is recorded and retried; the bottle still starts', async () => {
    await startWorker({ failures: { create_networks: 'transient' } });
    const log = new EventLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    const events = await waitFor(log, identity, 'agent.started');
    const failed = events.filter((e) => e.type === 'effect.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].data).toMatchObject({ effect: 'create_networks', permanent: false });
    await redis.connect().set(exitKey(identity), '0');
    await waitFor(log, identity, 'bottle.cleaned');
  });

  it('a permanent effect failure tears down and ends failed, never stuck', async () => {
    await startWorker({ failures: { build_image: 'permanent' } });
    const log = new EventLog(redis.connect());
    const identity = mintIdentity('dev');
    await enqueue(identity, 'bottle.start_requested', { plan: fakePlan(identity) });
    const events = await waitFor(log, identity, 'bottle.failed');
    expect(events.map((e) => e.type)).toContain('effect.failed');
    expect(bottleStatus((await log.liveState(identity))!)).toBe('failed');
  });

  it('two workers racing over many bottles keep every history linear', async () => {
    await startWorker();
    await startWorker();
    const log = new EventLog(redis.connect());
    const identities = Array.from({ length: 8 }, () => mintIdentity('race'));
    await Promise.all(identities.map((id) => enqueue(id, 'bottle.start_requested', { plan: fakePlan(id) })));
    await Promise.all(identities.map((id) => waitFor(log, id, 'agent.started')));
    // Commands racing the worker's own appends on the same bottles.
    await Promise.all(identities.map((id) => enqueue(id, 'bottle.stop_requested', { by: 'race-a' })));
    await Promise.all(identities.map((id) => enqueue(id, 'bottle.stop_requested', { by: 'race-b' })));
    for (const id of identities) {
      const events = await waitFor(log, id, 'bottle.preserved');
      expectLinear(events);
    }
  });
});
