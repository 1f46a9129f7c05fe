import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, type EventType } from '../../../src/events/schema.js';
import {
  BottleStateSchema,
  EFFECT_KINDS,
  foldEvent,
  foldHistory,
  initialBottleState,
  stateName,
  statesEqual,
  type BottleState,
  type EffectKind,
} from '../../../src/machines/index.js';
import { PRESERVE_REASONS } from '../../../src/machines/context.js';
import { history, hostRoutePlan, networkCreated, pipelockPlan, samplePlan, type Step } from '../../golden/fixtures.js';

const ID = 'dev-z9y8x';

/** Small deterministic PRNG (mulberry32) so a failing history can be reproduced from its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomStep(type: EventType, rand: () => number): Step {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const requestId = pick(['req-1', 'req-2']);
  switch (type) {
    case 'bottle.start_requested':
    case 'bottle.resume_requested':
      return [type, { plan: pick([samplePlan(ID), pipelockPlan(ID), hostRoutePlan(ID)]) }];
    case 'bottle.prepared':
      return [type, { state_dir: '/s' }];
    case 'image.built':
      return [type, { tag: 't', gateway_tag: 'g', cached: rand() < 0.5 }];
    case 'network.created':
      return rand() < 0.8 ? networkCreated(samplePlan(ID)) : [type, { internal: 'i', egress: 'e' }];
    case 'gateway.started':
      return [type, { container: 'g', ip: '10.213.0.10', legacy_launch: rand() < 0.2 }];
    case 'gateway.ready':
      return [type, rand() < 0.5 ? {} : { interception_ca: 'CA' }];
    case 'pipelock.started':
      return [type, { container: 'p', ip: '10.213.0.12' }];
    case 'agent.started':
      return [type, { container: 'a', runtime: 'runsc' }];
    case 'netwatch.started':
      return [type, { container: 'w' }];
    case 'netwatch.skipped':
      return [type, { reason: 'the agent had already exited' }];
    case 'agent.exited':
      return [type, { code: pick([0, 1, 130, 137, 143]), signal: null }];
    case 'sidecar.exited':
      return [type, { role: pick(['gateway', 'netwatch'] as const), container: 'g', code: 137, signal: 'SIGKILL' }];
    case 'bottle.stop_requested':
      return [type, { by: 'cli' }];
    case 'transcript.snapshotted':
      return [type, { files: 1, bytes: 1, missing: false }];
    case 'bottle.preserved':
      return [type, { reason: pick(PRESERVE_REASONS), resume_hint: `bottle resume ${ID}` }];
    case 'bottle.cleaned':
      return [type, {}];
    case 'capability.requested':
      const request = { request_id: requestId, kind: 'egress' as const, host: 'x.test', port: 443, reason: 'r' };
      return [type, { ...request, queue_if_pending: pick([true, false]) }];
    case 'capability.approved':
      return [type, { request_id: requestId, by: 'cli', ...(rand() < 0.3 ? { legacy_decision: true } : {}) }];
    case 'capability.denied':
      return [
        type,
        { request_id: requestId, reason: 'no', by: 'cli', ...(rand() < 0.3 ? { legacy_decision: true } : {}) },
      ];
    case 'egress.granted':
      return [type, { request_id: requestId, entry: 'x.test', live: rand() < 0.8 }];
    case 'capability.answered':
      return [type, { request_id: requestId, decision: pick(['approved', 'denied'] as const), delivered: true }];
    case 'egress.allowed':
    case 'egress.denied':
    case 'egress.audited':
      return [type, { n: Math.floor(rand() * 100), host: 'h.test', port: 443, method: 'CONNECT', reason: 'r' }];
    case 'egress.summary': {
      const at = '2026-01-01T00:00:00.000Z';
      const host = {
        host: 'h.test',
        allowed: 1,
        denied: 0,
        bytes_up: 1,
        bytes_down: 1,
        methods: ['GET'],
        last_seen: at,
      };
      return [type, { n: Math.floor(rand() * 100), hosts: [host], pending: 0 }];
    }
    case 'build.egress':
      return [type, { image: 'i', decision: 'denied', n: 1, host: 'h.test', port: 80, method: 'GET', reason: 'r' }];
    case 'agent.attention':
      return [
        type,
        { n: Math.floor(rand() * 100), kind: pick(['permission', 'question', 'idle'] as const), message: 'm' },
      ];
    case 'agent.working':
      return [type, { n: Math.floor(rand() * 100) }];
    case 'egress.alarm':
      return [
        type,
        {
          at: '2026-01-01T00:00:00.000Z',
          rule: 'aws_access_key_id',
          fingerprint: 'canary:0123456789ab',
          host: 'h.test',
          count: 1 + Math.floor(rand() * 3),
        },
      ];
    case 'effect.failed':
      // Half the failures hit a launch effect, so failed launch regions are reached too.
      const effect = pick(rand() < 0.5 ? LAUNCH_EFFECTS : EFFECT_KINDS);
      return [type, { effect, error: 'e', attempt: 1, permanent: rand() < 0.5 }];
    case 'bottle.failed':
      return [type, { effect: 'build_image', error: 'e' }];
    case 'usage.recorded':
      const model = pick(['claude-sonnet-4-5', 'claude-unknown-model']);
      const counts = { input: 100, output: 50, cache_creation: 10, cache_read: 1000, calls: 1 };
      return [type, { n: Math.floor(rand() * 100), models: { [model]: counts } }];
    case 'budget.raised':
      return [type, { add: 1000, by: 'cli' }];
    case 'budget.applied':
      return [type, { limit: 5000, live: rand() < 0.8 }];
    case 'bottle.discard_requested':
      return [type, { by: 'cli' }];
    case 'bottle.discarded':
      return [
        type,
        { images: ['claude-bottle/dev:1'], images_kept: [{ tag: 'claude-bottle/gateway:2', reason: 'r' }] },
      ];
    case 'port.publish_requested':
      return [type, { address: '127.0.0.1', host_port: pick([3000, 3001]), bottle_port: 3000, by: 'cli' }];
    case 'port.published':
      return [type, { address: '127.0.0.1', host_port: pick([3000, 3001]), bottle_port: 3000, container: 'f' }];
    case 'port.publish_failed':
      return [type, { address: '127.0.0.1', host_port: 3000, bottle_port: 3000, error: 'in use' }];
    case 'port.unpublish_requested':
      return [type, { host_port: pick([3000, 3001]), by: 'cli' }];
    case 'bottle.imported':
      return [type, { agent: 'dev', cwd: '/w', copy_cwd: false, started_at: 's', host: 'h', transcript: true }];
    case 'port.unpublished':
      return [type, { host_port: pick([3000, 3001]), removed: rand() < 0.8 }];
  }
}

const LAUNCH_EFFECTS: EffectKind[] = ['start_gateway', 'await_gateway_ready', 'start_pipelock', 'start_agent'];

/** Mostly the next sensible event, sometimes anything at all; keyed by stateName(). */
const HAPPY_NEXT: Record<string, EventType[]> = {
  idle: ['bottle.start_requested', 'bottle.imported'],
  preparing: ['bottle.prepared'],
  building: ['image.built'],
  networking: ['network.created'],
  launching: ['gateway.started', 'gateway.ready', 'pipelock.started', 'agent.started', 'effect.failed'],
  running: [
    'agent.exited',
    'capability.requested',
    'capability.approved',
    'bottle.stop_requested',
    'egress.allowed',
    'sidecar.exited',
    'usage.recorded',
    'budget.raised',
    'agent.attention',
    'agent.working',
    'port.publish_requested',
    'port.published',
    'port.unpublish_requested',
    'port.unpublished',
  ],
  stopping: ['agent.exited', 'bottle.stop_requested'],
  snapshotting: ['transcript.snapshotted'],
  preserving: ['bottle.preserved'],
  cleaning: ['bottle.cleaned'],
  applying_capability: ['bottle.preserved'],
  failing: ['bottle.failed'],
  preserved: ['bottle.resume_requested', 'bottle.discard_requested'],
  failed: ['bottle.resume_requested', 'bottle.discard_requested'],
  cleaned: ['bottle.resume_requested'],
  discarding: ['bottle.discarded'],
  discarded: ['bottle.resume_requested', 'bottle.discard_requested'],
};

/** Every state a launch region can rest in (its `deciding` step never rests). */
const LAUNCH_REGION_STATES = [
  'gateway.starting',
  'gateway.readying',
  'gateway.ready',
  'gateway.failed',
  'pipelock.starting',
  'pipelock.started',
  'pipelock.unused',
  'pipelock.failed',
  'agent.waiting',
  'agent.starting',
  'agent.started',
  'agent.skipped',
  'agent.failed',
];

/** The region states of a parallel state value, as region.state. */
function regionStates(value: BottleState['value']): string[] {
  if (typeof value === 'string') return [];
  return Object.values(value).flatMap((regions) =>
    typeof regions === 'string' ? [] : Object.entries(regions).map(([region, step]) => `${region}.${String(step)}`),
  );
}

describe('replay is total', () => {
  it('folds 150 random histories without throwing, and the state stays valid and JSON-stable', () => {
    const visited = new Set<string>();
    const visitedRegions = new Set<string>();
    for (let seed = 1; seed <= 150; seed++) {
      const rand = prng(seed);
      let state: BottleState = initialBottleState(ID);
      const steps: Step[] = [];
      for (let i = 0; i < 50; i++) {
        const choices = rand() < 0.7 ? HAPPY_NEXT[stateName(state)] : EVENT_TYPES;
        const step = randomStep(choices[Math.floor(rand() * choices.length)], rand);
        steps.push(step);
        const [event] = history([step], undefined, i + 1);
        const { state: next, effects } = foldEvent(state, event);
        for (const effect of effects) expect(effect.causedBySeq).toBe(i + 1);
        // The worker caches the state as JSON; the fold must continue identically from it.
        state = JSON.parse(JSON.stringify(next)) as BottleState;
        if (i % 10 === 0) BottleStateSchema.parse(state);
        expect(statesEqual(state, next), `seed ${seed} step ${i}`).toBe(true);
        visited.add(stateName(state));
        for (const region of regionStates(state.value)) visitedRegions.add(region);
      }
      expect(statesEqual(foldHistory(ID, history(steps)).state, state), `seed ${seed}`).toBe(true);
    }
    expect([...visited].sort()).toEqual(Object.keys(HAPPY_NEXT).sort());
    expect([...visitedRegions].sort()).toEqual([...LAUNCH_REGION_STATES].sort());
  }, 60_000);
});
