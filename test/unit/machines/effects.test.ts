import { describe, expect, it } from 'vitest';
import {
  EFFECT_KINDS,
  foldEvents,
  initialBottleState,
  InvalidEffectRequestError,
  parseEffectRequest,
  pendingEffects,
  type EffectRequest,
} from '../../../src/machines/index.js';
import type { LifecycleEvent } from '../../../src/events/schema.js';
import {
  agentStarted,
  budgetPlan,
  gatewayStarted,
  history,
  hostRoutePlan,
  launchSteps,
  legacyLaunchSteps,
  pipelockPlan,
  pipelockStarted,
  preLaunchSteps,
  sampleNetwork,
  samplePlan,
  type Step,
  type StoredStep,
  watchedPlan,
} from '../../golden/fixtures.js';

const ID = 'dev-a1b2c';
const NETWORKED = preLaunchSteps(ID).length;

/** Pending effects as kind@causedBySeq, sorted: the order of requests in one fold is not what is pinned here. */
const pending = (events: LifecycleEvent[]) =>
  pendingEffects(ID, events)
    .map((e) => `${e.kind}@${e.causedBySeq}`)
    .sort();

/** Every effect requested while folding `events`. */
function requested(events: LifecycleEvent[]): EffectRequest[] {
  const effects: EffectRequest[] = [];
  foldEvents(initialBottleState(ID), events, (_event, requests) => effects.push(...requests));
  return effects;
}

const gatewayReady: Step = ['gateway.ready', {}];

describe('pendingEffects', () => {
  const plan = samplePlan(ID);

  it('after network.created is both starts, caused by it', () => {
    expect(pending(history(preLaunchSteps(ID)))).toEqual([`start_agent@${NETWORKED}`, `start_gateway@${NETWORKED}`]);
  });

  it('after gateway.started is the wait for its ready line plus the agent start', () => {
    const events = history([...preLaunchSteps(ID), gatewayStarted(plan)]);
    expect(pending(events)).toEqual([`await_gateway_ready@${NETWORKED + 1}`, `start_agent@${NETWORKED}`]);
  });

  it('drops an effect once its event is in the log, in whichever order the starts report', () => {
    const agentFirst = history([...preLaunchSteps(ID), agentStarted(plan)]);
    expect(pending(agentFirst)).toEqual([`start_gateway@${NETWORKED}`]);
    const ready = history([...preLaunchSteps(ID), gatewayStarted(plan), gatewayReady]);
    expect(pending(ready)).toEqual([`start_agent@${NETWORKED}`]);
  });

  it('keeps an effect after a transient failure and drops it after a permanent one', () => {
    const failure = (permanent: boolean): Step => [
      'effect.failed',
      { effect: 'start_gateway', error: 'daemon busy', attempt: 1, permanent },
    ];
    const transient = history([...preLaunchSteps(ID), failure(false)]);
    expect(pending(transient)).toEqual([`start_agent@${NETWORKED}`, `start_gateway@${NETWORKED}`]);
    const permanent = history([...preLaunchSteps(ID), failure(true)]);
    expect(pending(permanent)).toEqual([`start_agent@${NETWORKED}`]);
  });

  it('in running is watch_agent alone', () => {
    const events = history(launchSteps(ID));
    const watch = { kind: 'watch_agent', identity: ID, causedBySeq: events.length, params: {} };
    expect(pendingEffects(ID, events)).toEqual([watch]);
  });

  it('with a pipelock plan, includes start_pipelock until pipelock.started', () => {
    const pipelock = pipelockPlan(ID);
    const networked = history(preLaunchSteps(ID, pipelock));
    expect(pending(networked)).toEqual([
      `start_agent@${NETWORKED}`,
      `start_gateway@${NETWORKED}`,
      `start_pipelock@${NETWORKED}`,
    ]);
    const started = history([...preLaunchSteps(ID, pipelock), pipelockStarted(pipelock)]);
    expect(pending(started)).toEqual([`start_agent@${NETWORKED}`, `start_gateway@${NETWORKED}`]);
  });

  it('with a host route, holds no agent start until the gateway is ready', () => {
    const routed = hostRoutePlan(ID);
    const started = history([...preLaunchSteps(ID, routed), gatewayStarted(routed)]);
    expect(pending(started)).toEqual([`await_gateway_ready@${NETWORKED + 1}`]);
    const ready = history([...preLaunchSteps(ID, routed), gatewayStarted(routed), gatewayReady]);
    expect(pending(ready)).toEqual([`start_agent@${NETWORKED + 2}`]);
  });

  it('in running after a v1 launch is watch_agent alone', () => {
    const events = history(legacyLaunchSteps(ID));
    expect(pending(events)).toEqual([`watch_agent@${events.length}`]);
  });

  // A v1 gateway.started also reported pipelock's start, and the machine counts it so; settles() does not.
  it('in running after a v1 launch of a pipelock plan is watch_agent alone', () => {
    const events = history(legacyLaunchSteps(ID, pipelockPlan(ID)));
    expect(pending(events)).toEqual([`watch_agent@${events.length}`]);
  });
});

describe('parseEffectRequest', () => {
  const valid = { kind: 'start_gateway', identity: ID, causedBySeq: 4, params: { network: sampleNetwork() } };

  it('rejects an unknown kind, naming it', () => {
    expect(() => parseEffectRequest({ ...valid, kind: 'launch_rocket' })).toThrow(InvalidEffectRequestError);
    expect(() => parseEffectRequest({ ...valid, kind: 'launch_rocket' })).toThrow(/unknown effect "launch_rocket"/);
  });

  it('rejects params that do not fit the kind, naming the effect, the bottle and the field', () => {
    const badNetwork = { ...valid, params: { network: { internal: 'cb-internal' } } };
    expect(() => parseEffectRequest(badNetwork)).toThrow(/^effect start_gateway for dev-a1b2c: network\.internal: /);
    const noCa = { ...valid, kind: 'start_agent' };
    expect(() => parseEffectRequest(noCa)).toThrow(/^effect start_agent for dev-a1b2c: interception_ca: Required/);
    const badReason = { kind: 'preserve', identity: ID, causedBySeq: 9, params: { reason: 'bored' } };
    expect(() => parseEffectRequest(badReason)).toThrow(/^effect preserve for dev-a1b2c: reason: /);
    const extra = { kind: 'cleanup', identity: ID, causedBySeq: 9, params: { force: true } };
    expect(() => parseEffectRequest(extra)).toThrow(/^effect cleanup for dev-a1b2c: \(params\): .*force/);
  });

  it('rejects a malformed envelope', () => {
    expect(() => parseEffectRequest({ ...valid, causedBySeq: -1 })).toThrow(/^malformed effect request: /);
    expect(() => parseEffectRequest('start_gateway')).toThrow(InvalidEffectRequestError);
  });

  it('accepts every request the machine makes, of every kind, after a JSON round trip', () => {
    const pipelock = pipelockPlan(ID);
    const routed = hostRoutePlan(ID);
    const capability: Step = [
      'capability.requested',
      { request_id: 'req-1', kind: 'egress', host: 'pypi.org', port: 443, reason: 'pip', queue_if_pending: true },
    ];
    const histories: Array<Array<Step | StoredStep>> = [
      [
        ...launchSteps(ID, pipelock),
        ['bottle.stop_requested', { by: 'cli' }],
        ['agent.exited', { code: 143, signal: 'SIGTERM' }],
        ['transcript.snapshotted', { files: 1, bytes: 1, missing: false }],
        ['bottle.preserved', { reason: 'stopped', resume_hint: `bottle resume ${ID}` }],
        ['bottle.resume_requested', { plan: routed }],
        ...launchSteps(ID, routed).slice(1, -2),
        ['gateway.ready', { interception_ca: 'CA' }],
        agentStarted(routed),
        capability,
        ['capability.approved', { request_id: 'req-1', by: 'cli' }],
      ],
      [
        ...launchSteps(ID),
        ['agent.exited', { code: 0, signal: null }],
        ['transcript.snapshotted', { files: 1, bytes: 1, missing: false }],
      ],
      [
        ...launchSteps(ID),
        ['agent.exited', { code: 1, signal: null }],
        ['transcript.snapshotted', { files: 1, bytes: 1, missing: false }],
        ['bottle.preserved', { reason: 'crash', resume_hint: `bottle resume ${ID}` }],
        ['bottle.discard_requested', { by: 'cli' }],
      ],
      launchSteps(ID, watchedPlan(ID)),
      [
        ...preLaunchSteps(ID),
        ['effect.failed', { effect: 'start_gateway', error: 'e', attempt: 1, permanent: true }],
        agentStarted(samplePlan(ID)),
      ],
      legacyLaunchSteps(ID, pipelock),
      [
        ...launchSteps(ID),
        ['capability.requested', { ...capability[1], request_id: 'req-2', kind: 'dockerfile', dockerfile: 'FROM x' }],
        ['capability.approved', { request_id: 'req-2', by: 'cli' }],
      ],
      [...launchSteps(ID, budgetPlan(ID, { unit: 'tokens', limit: 100 })), ['budget.raised', { add: 50, by: 'cli' }]],
      [
        ...launchSteps(ID, samplePlan(ID, { ports: [{ address: '127.0.0.1', host_port: 3000, bottle_port: 3000 }] })),
        ['port.unpublish_requested', { host_port: 3000, by: 'cli' }],
      ],
    ];
    const effects = histories.flatMap((steps) => requested(history(steps)));
    expect([...new Set(effects.map((e) => e.kind))].sort()).toEqual([...EFFECT_KINDS].sort());
    for (const effect of effects) {
      expect(parseEffectRequest(JSON.parse(JSON.stringify(effect))), effect.kind).toEqual(effect);
    }
  });
});
