import { describe, expect, it } from 'vitest';
import { EFFECT_KINDS } from '../../src/effects/types.js';
import { EVENT_TYPES, type EventType } from '../../src/events/schema.js';
import { BottleStateSchema, foldEvent, foldHistory, initialBottleState, statesEqual, type BottleState } from '../../src/machines/index.js';
import { history, samplePlan, type Step } from '../golden/fixtures.js';

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
      return [type, { plan: samplePlan(ID) }];
    case 'bottle.prepared':
      return [type, { state_dir: '/s' }];
    case 'image.built':
      return [type, { tag: 't', gateway_tag: 'g', cached: rand() < 0.5 }];
    case 'network.created':
      return [type, { internal: 'i', egress: 'e' }];
    case 'gateway.started':
      return [type, { container: 'g', ip: '172.30.0.2' }];
    case 'agent.started':
      return [type, { container: 'a', runtime: 'runsc' }];
    case 'agent.exited':
      return [type, { code: pick([0, 1, 130, 137, 143]), signal: null }];
    case 'bottle.stop_requested':
      return [type, { by: 'cli' }];
    case 'transcript.snapshotted':
      return [type, { files: 1, bytes: 1, missing: false }];
    case 'bottle.preserved':
      return [type, { reason: pick(['crash', 'signal', 'stopped', 'capability', 'failure'] as const), resume_hint: `bottle resume ${ID}` }];
    case 'bottle.cleaned':
      return [type, {}];
    case 'capability.requested':
      return [type, { request_id: requestId, kind: 'egress', host: 'x.test', port: 443, reason: 'r', queue_if_pending: pick([true, false] as const) }];
    case 'capability.approved':
      return [type, { request_id: requestId, by: 'cli' }];
    case 'capability.denied':
      return [type, { request_id: requestId, reason: 'no', by: 'cli' }];
    case 'egress.allowed':
    case 'egress.denied':
      return [type, { n: Math.floor(rand() * 100), host: 'h.test', port: 443, method: 'CONNECT', reason: 'r' }];
    case 'effect.failed':
      return [type, { effect: pick(EFFECT_KINDS), error: 'e', attempt: 1, permanent: rand() < 0.5 }];
    case 'bottle.failed':
      return [type, { effect: 'build_image', error: 'e' }];
  }
}

/** Mostly the next sensible event, sometimes anything at all. */
const HAPPY_NEXT: Record<string, EventType[]> = {
  idle: ['bottle.start_requested'],
  preparing: ['bottle.prepared'],
  building: ['image.built'],
  networking: ['network.created'],
  starting_gateway: ['gateway.started'],
  launching: ['agent.started'],
  running: ['agent.exited', 'capability.requested', 'capability.approved', 'bottle.stop_requested', 'egress.allowed'],
  snapshotting: ['transcript.snapshotted'],
  preserving: ['bottle.preserved'],
  cleaning: ['bottle.cleaned'],
  applying_capability: ['bottle.preserved'],
  failing: ['bottle.failed'],
  preserved: ['bottle.resume_requested'],
  failed: ['bottle.resume_requested'],
  cleaned: ['bottle.resume_requested'],
};

describe('replay is total', () => {
  it('folds 150 random histories without throwing, and the state stays valid and JSON-stable', () => {
    const visited = new Set<string>();
    for (let seed = 1; seed <= 150; seed++) {
      const rand = prng(seed);
      let state: BottleState = initialBottleState(ID);
      const steps: Step[] = [];
      for (let i = 0; i < 50; i++) {
        const choices = rand() < 0.7 ? HAPPY_NEXT[state.value] : EVENT_TYPES;
        const step = randomStep(choices[Math.floor(rand() * choices.length)], rand);
        steps.push(step);
        const [event] = history([step], undefined, i + 1);
        const { state: next, effects } = foldEvent(state, event);
        for (const effect of effects) expect(effect.causedBySeq).toBe(i + 1);
        // The worker caches the state as JSON; the fold must continue identically from it.
        state = JSON.parse(JSON.stringify(next)) as BottleState;
        if (i % 10 === 0) BottleStateSchema.parse(state);
        expect(statesEqual(state, next), `seed ${seed} step ${i}`).toBe(true);
        visited.add(state.value);
      }
      expect(statesEqual(foldHistory(ID, history(steps)).state, state), `seed ${seed}`).toBe(true);
    }
    expect([...visited].sort()).toEqual(Object.keys(HAPPY_NEXT).sort());
  }, 60_000);
});
