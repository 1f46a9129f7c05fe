import { Redis } from 'ioredis';
import { initialTransition, transition } from 'xstate';
import { EventLog } from '../src/event-store/log.js';
import type { LifecycleEvent, NewEvent } from '../src/events/schema.js';
import { bottleMachine, foldHistory, initialBottleState, type BottleState } from '../src/machines/index.js';
import { benchIdentity, benchPlan, commit, egressEvent, removeBenchBottle } from './event-log.bench.js';
import { median, printRows, type Row } from './stats.js';

/**
 * Replay: a 10,000-event history (mostly egress decisions, a few dozen
 * lifecycle events, two runs of the bottle) stored in Redis, then
 * read + upcast/validate + fold end to end, which is what `bottle replay`,
 * the worker's cache rebuild and the dashboard do.
 */

const TARGET_EVENTS_PER_SECOND = 200_000;

function launch(identity: string, resumed: boolean): NewEvent[] {
  const plan = benchPlan(identity);
  return [
    { type: resumed ? 'bottle.resume_requested' : 'bottle.start_requested', data: { plan } },
    { type: 'bottle.prepared', data: { state_dir: `/state/${identity}` } },
    { type: 'effect.failed', data: { effect: 'build_image', error: 'ECONNRESET', attempt: 1, permanent: false } },
    { type: 'image.built', data: { tag: plan.image.tag, gateway_tag: plan.gateway_image.tag, cached: resumed } },
    {
      type: 'network.created',
      data: {
        ...plan.networks,
        subnets: { internal: '10.213.0.8/29', egress: '10.213.0.16/29' },
        addresses: { gateway: '10.213.0.10', agent: '10.213.0.11', pipelock: '10.213.0.12' },
      },
    },
    { type: 'gateway.started', data: { container: plan.containers.gateway, ip: '10.213.0.10', legacy_launch: false } },
    { type: 'gateway.ready', data: {} },
    { type: 'agent.started', data: { container: plan.containers.agent, runtime: 'runsc' } },
  ];
}

/** The realistic mix, as batches in append order. */
export function replayHistory(identity: string, total = 10_000): NewEvent[][] {
  const lifecycle: NewEvent[][] = [
    launch(identity, false),
    [
      {
        type: 'capability.requested',
        data: {
          request_id: 'cap-1',
          kind: 'egress',
          host: 'pypi.org',
          port: 443,
          reason: 'pip',
          queue_if_pending: true,
        },
      },
    ],
    [{ type: 'capability.denied', data: { request_id: 'cap-1', reason: 'no', by: 'cli' } }],
    [
      {
        type: 'capability.requested',
        data: {
          request_id: 'cap-2',
          kind: 'egress',
          host: 'crates.io',
          port: 443,
          reason: 'cargo',
          queue_if_pending: true,
        },
      },
    ],
    [
      { type: 'capability.approved', data: { request_id: 'cap-2', by: 'cli' } },
      { type: 'bottle.preserved', data: { reason: 'capability', resume_hint: `bottle resume ${identity}` } },
    ],
    launch(identity, true),
    [{ type: 'bottle.stop_requested', data: { by: 'cli' } }],
    [
      { type: 'agent.exited', data: { code: 143, signal: 'SIGTERM' } },
      { type: 'transcript.snapshotted', data: { files: 40, bytes: 123_456, missing: false } },
      { type: 'bottle.preserved', data: { reason: 'stopped', resume_hint: `bottle resume ${identity}` } },
      { type: 'bottle.resume_requested', data: { plan: benchPlan(identity) } },
    ],
    launch(identity, true).slice(1),
  ];
  const lifecycleCount = lifecycle.reduce((sum, batch) => sum + batch.length, 0);
  const observations = total - lifecycleCount;
  const perGap = Math.floor(observations / (lifecycle.length - 1));
  const batches: NewEvent[][] = [];
  let n = 0;
  let remaining = observations;
  lifecycle.forEach((batch, i) => {
    batches.push(batch);
    if (i === lifecycle.length - 1) return;
    const count = i === lifecycle.length - 2 ? remaining : perGap;
    remaining -= count;
    // Decision numbers restart with each gateway; batches of 500 as a busy watcher would write.
    if (batch.some((e) => e.type === 'gateway.started')) n = 0;
    for (let written = 0; written < count; written += 500) {
      batches.push(Array.from({ length: Math.min(500, count - written) }, () => egressEvent(++n)));
    }
  });
  return batches;
}

function eventsPerSecond(events: number, ms: number): number {
  return (events / ms) * 1000;
}

function timeRuns(runs: number, fn: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Folds every event through xstate's own transition(), observations included: the naive replay. */
function foldWithXstateOnly(identity: string, events: readonly LifecycleEvent[]): string {
  let [snapshot] = initialTransition(bottleMachine, { identity });
  for (const event of events) [snapshot] = transition(bottleMachine, snapshot, event);
  return snapshot.value as string;
}

export async function benchReplay(redis: Redis, total = 10_000, runs = 15): Promise<Row[]> {
  const identity = benchIdentity('benchreplay');
  const log = new EventLog(redis);
  try {
    let state: BottleState = initialBottleState(identity);
    for (const batch of replayHistory(identity, total)) state = await commit(log, identity, state, batch);
    if (state.seq !== total) throw new Error(`bench history has ${state.seq} events, wanted ${total}`);

    // Warm up JIT and connections.
    for (let i = 0; i < 2; i++) foldHistory(identity, await log.read(identity));

    // End to end and read only take turns, so load elsewhere on the machine falls on both alike
    // (measured one after the other, read only could come out slower than the whole it is part of).
    const endToEndTimes: number[] = [];
    const readTimes: number[] = [];
    let replayed: unknown;
    for (let i = 0; i < runs; i++) {
      let t0 = performance.now();
      replayed = foldHistory(identity, await log.read(identity)).state.value;
      endToEndTimes.push(performance.now() - t0);
      t0 = performance.now();
      await log.read(identity);
      readTimes.push(performance.now() - t0);
    }
    if (replayed !== 'running') {
      throw new Error(`bench history folded to ${JSON.stringify(replayed)}, expected running`);
    }
    const endToEndMs = median(endToEndTimes);
    const readMs = median(readTimes);
    const events = await log.read(identity);
    const foldMs = timeRuns(runs, () => foldHistory(identity, events));
    let folded = '';
    const xstateMs = timeRuns(Math.min(runs, 3), () => {
      folded = foldWithXstateOnly(identity, events);
    });
    if (folded !== 'running') throw new Error(`xstate-only fold ended in ${folded}`);

    return [
      {
        metric: `replay ${total} events: XRANGE + validate + fold`,
        value: eventsPerSecond(total, endToEndMs),
        unit: 'events/s',
        target: `>= ${TARGET_EVENTS_PER_SECOND}`,
      },
      { metric: 'replay end to end, wall time', value: endToEndMs, unit: 'ms' },
      { metric: 'read only: XRANGE pages + upcast/validate', value: eventsPerSecond(total, readMs), unit: 'events/s' },
      {
        metric: 'pure fold: foldHistory (baseline: xstate transition() per event)',
        value: eventsPerSecond(total, foldMs),
        unit: 'events/s',
        baseline: eventsPerSecond(total, xstateMs),
      },
    ];
  } finally {
    await removeBenchBottle(redis, identity);
  }
}

export async function main(): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    printRows('replay (read + validate + fold)', await benchReplay(redis));
  } finally {
    redis.disconnect();
  }
}
