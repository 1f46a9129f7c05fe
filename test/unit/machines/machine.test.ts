import { describe, expect, it } from 'vitest';
import {
  accepts,
  bottleStatus,
  foldEvent,
  foldHistory,
  HistoryGapError,
  initialBottleState,
  isTerminal,
  MACHINE_VERSION,
  parseBottleState,
  stateName,
  statesEqual,
  type BottleState,
  type Command,
  type EffectRequest,
} from '../../../src/machines/index.js';
import { parseEvent, type LifecycleEvent } from '../../../src/events/schema.js';
import type { BottlePlan } from '../../../src/plan/schema.js';
import {
  agentStarted,
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
} from '../../golden/fixtures.js';

const ID = 'dev-a1b2c';

/** Folds step by step, as the worker does, collecting every effect requested along the way. */
function foldAll(events: LifecycleEvent[], from: BottleState = initialBottleState(ID)) {
  let state = from;
  const effects: EffectRequest[] = [];
  for (const event of events) {
    const result = foldEvent(state, event);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, effects };
}

const kinds = (effects: EffectRequest[]) => effects.map((e) => e.kind);
const running = (extra: Step[] = []) => history([...launchSteps(ID), ...extra]);
/** seq of the event that brought the sample launch to running. */
const LAUNCHED = launchSteps(ID).length;
/** seq of network.created, whose fold begins the parallel launch. */
const NETWORKED = preLaunchSteps(ID).length;

const gatewayReady: Step = ['gateway.ready', {}];
const failed = (effect: string, permanent: boolean, error = `${effect} broke`): Step => [
  'effect.failed',
  { effect, error, attempt: permanent ? 3 : 1, permanent },
];
const launching = (regions: { gateway: string; pipelock?: string; agent: string }) => ({
  launching: { pipelock: 'unused', ...regions },
});

describe('launch', () => {
  it('walks idle -> running through the parallel launch, each effect caused by the event that requested it', () => {
    const events = running();
    let state = initialBottleState(ID);
    expect(state.value).toBe('idle');
    const seen: Array<[unknown, string[], number[]]> = [];
    for (const event of events) {
      const result = foldEvent(state, event);
      state = result.state;
      seen.push([state.value, kinds(result.effects), result.effects.map((e) => e.causedBySeq)]);
      for (const effect of result.effects) expect(effect.identity).toBe(ID);
    }
    expect(seen).toEqual([
      ['preparing', ['prepare_state'], [1]],
      ['building', ['build_image'], [2]],
      ['networking', ['create_networks'], [3]],
      [launching({ gateway: 'starting', agent: 'starting' }), ['start_gateway', 'start_agent'], [4, 4]],
      [launching({ gateway: 'readying', agent: 'starting' }), ['await_gateway_ready'], [5]],
      [launching({ gateway: 'ready', agent: 'starting' }), [], []],
      ['running', ['watch_agent'], [7]],
    ]);
    expect(state.context.plan).toEqual(samplePlan(ID));
    expect(state.seq).toBe(LAUNCHED);
    expect(state.context.seq).toBe(LAUNCHED);
  });

  it('requests the gateway and agent starts together from network.created, with its network layout', () => {
    const { state, effects } = foldAll(history(preLaunchSteps(ID)));
    const network = sampleNetwork(samplePlan(ID));
    expect(state.context.network).toEqual(network);
    expect(effects.filter((e) => e.causedBySeq === NETWORKED)).toEqual([
      { kind: 'start_gateway', identity: ID, causedBySeq: NETWORKED, params: { network } },
      { kind: 'start_agent', identity: ID, causedBySeq: NETWORKED, params: { network, interception_ca: null } },
    ]);
  });

  it('keeps no layout for networks created without subnets, and still launches', () => {
    const { state, effects } = foldAll(history(legacyLaunchSteps(ID).slice(0, NETWORKED)));
    expect(state.context.network).toBeNull();
    expect(effects.filter((e) => e.causedBySeq === NETWORKED).map((e) => [e.kind, e.params])).toEqual([
      ['start_gateway', { network: null }],
      ['start_agent', { network: null, interception_ca: null }],
    ]);
  });

  it('reaches running only once every region is done when the agent reports before the gateway', () => {
    const plan = samplePlan(ID);
    const events = history([...preLaunchSteps(ID), agentStarted(plan), gatewayStarted(plan), gatewayReady]);
    const steps = events.slice(NETWORKED).map((event, i) => {
      const { state, effects } = foldAll(events.slice(0, NETWORKED + i + 1));
      return [event.type, state.value, kinds(effects.filter((e) => e.causedBySeq === event.seq))];
    });
    expect(steps).toEqual([
      ['agent.started', launching({ gateway: 'starting', agent: 'started' }), []],
      ['gateway.started', launching({ gateway: 'readying', agent: 'started' }), ['await_gateway_ready']],
      ['gateway.ready', 'running', ['watch_agent']],
    ]);
  });

  it.each([
    ['gateway, ready, agent', ['gateway', 'ready', 'agent']],
    ['gateway, agent, ready', ['gateway', 'agent', 'ready']],
    ['agent, gateway, ready', ['agent', 'gateway', 'ready']],
  ] as const)('reaches running in the order %s, requesting watch_agent once, from the last', (_name, order) => {
    const plan = samplePlan(ID);
    const step = { gateway: gatewayStarted(plan), ready: gatewayReady, agent: agentStarted(plan) };
    const events = history([...preLaunchSteps(ID), ...order.map((name) => step[name])]);
    const before = foldAll(events.slice(0, -1)).state;
    expect(stateName(before)).toBe('launching');
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('running');
    expect(effects.filter((e) => e.kind === 'watch_agent')).toEqual([
      { kind: 'watch_agent', identity: ID, causedBySeq: events.at(-1)!.seq, params: {} },
    ]);
  });

  it('ignores a ready line before the gateway reports its start', () => {
    const plan = samplePlan(ID);
    const { state, effects } = foldAll(history([...preLaunchSteps(ID), gatewayReady, agentStarted(plan)]));
    expect(state.value).toEqual(launching({ gateway: 'starting', agent: 'started' }));
    expect(effects.filter((e) => e.causedBySeq > NETWORKED)).toEqual([]);
  });

  it('with a host credential route, waits for gateway.ready before requesting start_agent and passes it the CA', () => {
    const plan = hostRoutePlan(ID);
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const events = history([
      ...preLaunchSteps(ID, plan),
      gatewayStarted(plan),
      ['gateway.ready', { interception_ca: ca }],
      agentStarted(plan),
    ]);
    const networked = foldAll(events.slice(0, NETWORKED));
    expect(networked.state.value).toEqual(launching({ gateway: 'starting', agent: 'waiting' }));
    expect(kinds(networked.effects.filter((e) => e.causedBySeq === NETWORKED))).toEqual(['start_gateway']);
    const started = foldAll(events.slice(0, NETWORKED + 1));
    expect(started.effects.some((e) => e.kind === 'start_agent')).toBe(false);
    const ready = foldAll(events.slice(0, NETWORKED + 2));
    expect(ready.state.context.gatewayCa).toBe(ca);
    expect(ready.effects.filter((e) => e.kind === 'start_agent')).toEqual([
      {
        kind: 'start_agent',
        identity: ID,
        causedBySeq: NETWORKED + 2,
        params: { network: sampleNetwork(plan), interception_ca: ca },
      },
    ]);
    expect(foldAll(events).state.value).toBe('running');
  });

  it('does not hold the agent for the anthropic-base-url route, even when it names a host', () => {
    const plan = samplePlan(ID);
    const credentials = plan.credentials.map((route) => ({ ...route, host: 'api.anthropic.com' }));
    const withHost = { ...plan, credentials };
    const { state } = foldAll(history(preLaunchSteps(ID, withHost)));
    expect(state.value).toEqual(launching({ gateway: 'starting', agent: 'starting' }));
  });

  it('with a pipelock plan, requests start_pipelock with the other starts and needs pipelock.started', () => {
    const plan = pipelockPlan(ID);
    const events = history([
      ...preLaunchSteps(ID, plan),
      gatewayStarted(plan),
      gatewayReady,
      agentStarted(plan),
      pipelockStarted(plan),
    ]);
    const networked = foldAll(events.slice(0, NETWORKED));
    expect(networked.effects.filter((e) => e.causedBySeq === NETWORKED).map((e) => [e.kind, e.params])).toEqual([
      ['start_gateway', { network: sampleNetwork(plan) }],
      ['start_pipelock', { network: sampleNetwork(plan) }],
      ['start_agent', { network: sampleNetwork(plan), interception_ca: null }],
    ]);
    const withoutPipelock = foldAll(events.slice(0, -1)).state;
    expect(withoutPipelock.value).toEqual(launching({ gateway: 'ready', pipelock: 'starting', agent: 'started' }));
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('running');
    expect(effects.at(-1)).toMatchObject({ kind: 'watch_agent', causedBySeq: events.at(-1)!.seq });
  });

  it('ignores pipelock.started for a plan without pipelock', () => {
    const plan = samplePlan(ID);
    const { state } = foldAll(history([...preLaunchSteps(ID), pipelockStarted(plan)]));
    expect(state.value).toEqual(launching({ gateway: 'starting', agent: 'starting' }));
  });

  it('ignores events that belong to a later step', () => {
    const [start] = history(launchSteps(ID));
    const early = history([['agent.started', { container: 'c', runtime: 'runc' }]], undefined, 2);
    const { state, effects } = foldAll([start, ...early]);
    expect(state.value).toBe('preparing');
    expect(state.seq).toBe(2);
    expect(effects.map((e) => e.causedBySeq)).toEqual([1]);
  });
});

describe('legacy launch histories', () => {
  it.each([
    ['the sample plan', samplePlan(ID)],
    ['a pipelock plan', pipelockPlan(ID)],
    ['a plan with a host route', hostRoutePlan(ID)],
  ] as Array<[string, BottlePlan]>)('a v1 gateway.started then agent.started reaches running for %s', (_name, plan) => {
    const events = history(legacyLaunchSteps(ID, plan));
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('running');
    expect(state.context.network).toBeNull();
    expect(effects.at(-1)).toEqual({ kind: 'watch_agent', identity: ID, causedBySeq: events.length, params: {} });
    // Its gateway effect had already waited for the ready line.
    expect(kinds(effects)).not.toContain('await_gateway_ready');
  });

  it('a v1 gateway.started counts as pipelock started and ready', () => {
    const plan = pipelockPlan(ID);
    const events = history(legacyLaunchSteps(ID, plan).slice(0, -1));
    expect(events.at(-1)).toMatchObject({ type: 'gateway.started', v: 2, data: { legacy_launch: true } });
    const { state } = foldAll(events);
    expect(state.value).toEqual(launching({ gateway: 'ready', pipelock: 'started', agent: 'starting' }));
  });
});

describe('launch failures', () => {
  it('after a permanent start_gateway failure waits for agent.started, then tears down naming start_gateway', () => {
    const plan = samplePlan(ID);
    const events = history([
      ...preLaunchSteps(ID),
      failed('start_gateway', true, 'address 10.213.0.10 in use'),
      failed('start_agent', false, 'ECONNRESET'),
      agentStarted(plan),
    ]);
    const afterFailure = foldAll(events.slice(0, NETWORKED + 1));
    expect(afterFailure.state.value).toEqual(launching({ gateway: 'failed', agent: 'starting' }));
    expect(afterFailure.effects.filter((e) => e.causedBySeq === NETWORKED + 1)).toEqual([]);
    const afterTransient = foldAll(events.slice(0, NETWORKED + 2)).state;
    expect(stateName(afterTransient)).toBe('launching');
    expect(afterTransient.context.lastError).toMatchObject({ effect: 'start_agent', permanent: false });
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('failing');
    expect(state.context.launchFailure).toEqual({ effect: 'start_gateway', error: 'address 10.213.0.10 in use' });
    expect(effects.filter((e) => e.causedBySeq === events.length)).toEqual([
      {
        kind: 'teardown_failed',
        identity: ID,
        causedBySeq: events.length,
        params: { effect: 'start_gateway', error: 'address 10.213.0.10 in use' },
      },
    ]);
  });

  it('names the first permanent launch failure when the agent start then fails permanently too', () => {
    const events = history([...preLaunchSteps(ID), failed('start_gateway', true), failed('start_agent', true)]);
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('failing');
    expect(state.context.lastError).toMatchObject({ effect: 'start_agent', permanent: true });
    expect(effects.at(-1)).toMatchObject({
      kind: 'teardown_failed',
      params: { effect: 'start_gateway', error: 'start_gateway broke' },
    });
  });

  it('after a permanent start_agent failure waits for a ready gateway, then tears down naming start_agent', () => {
    const plan = samplePlan(ID);
    const events = history([...preLaunchSteps(ID), failed('start_agent', true), gatewayStarted(plan), gatewayReady]);
    expect(foldAll(events.slice(0, -1)).state.value).toEqual(launching({ gateway: 'readying', agent: 'failed' }));
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('failing');
    expect(effects.at(-1)).toMatchObject({ kind: 'teardown_failed', params: { effect: 'start_agent' } });
  });

  it('tears down naming start_pipelock when pipelock cannot start', () => {
    const plan = pipelockPlan(ID);
    const events = history([
      ...preLaunchSteps(ID, plan),
      failed('start_pipelock', true, 'pipelock refused its config'),
      gatewayStarted(plan),
      gatewayReady,
      agentStarted(plan),
    ]);
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('failing');
    expect(effects.at(-1)).toMatchObject({
      kind: 'teardown_failed',
      params: { effect: 'start_pipelock', error: 'pipelock refused its config' },
    });
  });

  it.each(['start_gateway', 'await_gateway_ready'])(
    'with a host route, a permanent %s failure skips the agent start and tears down at once',
    (effect) => {
      const plan = hostRoutePlan(ID);
      const steps: Step[] = effect === 'start_gateway' ? [] : [gatewayStarted(plan)];
      const events = history([...preLaunchSteps(ID, plan), ...steps, failed(effect, true)]);
      const { state, effects } = foldAll(events);
      expect(state.value).toBe('failing');
      expect(kinds(effects)).not.toContain('start_agent');
      expect(effects.at(-1)).toMatchObject({ kind: 'teardown_failed', params: { effect }, causedBySeq: events.length });
    },
  );

  it('ignores a permanent failure of an effect the launch is not waiting on', () => {
    const events = history([...preLaunchSteps(ID), failed('build_image', true)]);
    const { state, effects } = foldAll(events);
    expect(state.value).toEqual(launching({ gateway: 'starting', agent: 'starting' }));
    expect(state.context.launchFailure).toBeNull();
    expect(effects.filter((e) => e.causedBySeq === events.length)).toEqual([]);
  });

  it('a resume after a failed launch starts with no launch failure, network or CA', () => {
    const plan = hostRoutePlan(ID);
    const { state } = foldAll(
      history([
        ...preLaunchSteps(ID, plan),
        gatewayStarted(plan),
        ['gateway.ready', { interception_ca: 'CA' }],
        failed('start_agent', true),
        ['bottle.failed', { effect: 'start_agent', error: 'start_agent broke' }],
        ['bottle.resume_requested', { plan }],
      ]),
    );
    expect(state.value).toBe('preparing');
    expect(state.context).toMatchObject({ launchFailure: null, network: null, gatewayCa: null, lastError: null });
  });
});

describe('agent exit and the preservation matrix', () => {
  it('cleans up after a clean exit: snapshot, then cleanup, then cleaned', () => {
    const { state, effects } = foldAll(
      running([
        ['agent.exited', { code: 0, signal: null }],
        ['transcript.snapshotted', { files: 3, bytes: 2048, missing: false }],
        ['bottle.cleaned', {}],
      ]),
    );
    expect(kinds(effects).slice(-2)).toEqual(['snapshot_transcript', 'cleanup']);
    expect(state.value).toBe('cleaned');
    expect(state.context.exitCode).toBe(0);
    expect(isTerminal(state)).toBe(true);
  });

  it.each([
    [1, null, 'crash'],
    [2, null, 'crash'],
    [130, 'SIGINT', 'signal'],
    [137, 'SIGKILL', 'signal'],
    [143, 'SIGTERM', 'signal'],
  ] as const)('preserves after exit %i (signal %s) with reason %s', (code, signal, reason) => {
    const { state, effects } = foldAll(
      running([
        ['agent.exited', { code, signal }],
        ['transcript.snapshotted', { files: 1, bytes: 10, missing: false }],
      ]),
    );
    expect(state.value).toBe('preserving');
    const preserve = effects.at(-1)!;
    expect(preserve.kind).toBe('preserve');
    expect(preserve.params).toEqual({ reason });
    expect(state.context.signal).toBe(signal);
  });

  it('passes the exit code and signal to the snapshot effect', () => {
    const { effects } = foldAll(running([['agent.exited', { code: 137, signal: 'SIGKILL' }]]));
    expect(effects.at(-1)).toMatchObject({
      kind: 'snapshot_transcript',
      params: { code: 137, signal: 'SIGKILL' },
      causedBySeq: LAUNCHED + 1,
    });
  });

  it('reaches preserved, which is resumable and not terminal', () => {
    const { state } = foldAll(
      running([
        ['agent.exited', { code: 1, signal: null }],
        ['transcript.snapshotted', { files: 0, bytes: 0, missing: true, warning: 'no transcript folder' }],
        ['bottle.preserved', { reason: 'crash', resume_hint: `bottle resume ${ID}` }],
      ]),
    );
    expect(state.value).toBe('preserved');
    expect(state.context.preservedReason).toBe('crash');
    expect(isTerminal(state)).toBe(false);
  });
});

describe('stop', () => {
  it('requests stop_agent while running and stays running until the agent exits', () => {
    const { state, effects } = foldAll(running([['bottle.stop_requested', { by: 'cli' }]]));
    expect(state.value).toBe('running');
    expect(effects.at(-1)).toMatchObject({ kind: 'stop_agent', params: { by: 'cli' }, causedBySeq: LAUNCHED + 1 });
    expect(bottleStatus(state)).toBe('running (stopping)');
  });

  it('preserves with reason stopped even when the agent then exits 0', () => {
    const { state, effects } = foldAll(
      running([
        ['bottle.stop_requested', { by: 'cli' }],
        ['agent.exited', { code: 0, signal: null }],
        ['transcript.snapshotted', { files: 2, bytes: 99, missing: false }],
      ]),
    );
    expect(state.value).toBe('preserving');
    expect(effects.at(-1)).toMatchObject({ kind: 'preserve', params: { reason: 'stopped' } });
  });

  it.each([
    ['the build', 2],
    ['the parallel launch', NETWORKED + 1],
  ])('remembers a stop requested during %s and asks for it on entering running', (_during, at) => {
    const steps = launchSteps(ID);
    const events = history([...steps.slice(0, at), ['bottle.stop_requested', { by: 'cli' }], ...steps.slice(at)]);
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('running');
    const lastCause = events.at(-1)!.seq;
    expect(effects.filter((e) => e.causedBySeq === lastCause).map((e) => [e.kind, e.params])).toEqual([
      ['watch_agent', {}],
      ['stop_agent', { by: 'cli' }],
    ]);
    expect(effects.some((e) => e.kind === 'stop_agent' && e.causedBySeq !== lastCause)).toBe(false);
  });

  it('keeps the parallel launch going after a stop request, without asking to stop anything yet', () => {
    const plan = samplePlan(ID);
    const events = history([...preLaunchSteps(ID), gatewayStarted(plan), ['bottle.stop_requested', { by: 'cli' }]]);
    const { state, effects } = foldAll(events);
    expect(state.value).toEqual(launching({ gateway: 'readying', agent: 'starting' }));
    expect(state.context).toMatchObject({ stopRequested: true, stopRequestedBy: 'cli' });
    expect(effects.filter((e) => e.causedBySeq === events.length)).toEqual([]);
  });
});

describe('capability requests', () => {
  const request: Step = [
    'capability.requested',
    { request_id: 'req-1', kind: 'egress', host: 'pypi.org', port: 443, reason: 'pip install', queue_if_pending: true },
  ];
  const second: Step = [
    'capability.requested',
    {
      request_id: 'req-2',
      kind: 'dockerfile',
      dockerfile: 'RUN apt-get install -y jq',
      reason: 'jq',
      queue_if_pending: true,
    },
  ];

  it('keeps running with the request pending', () => {
    const { state, effects } = foldAll(running([request]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toMatchObject({
      request_id: 'req-1',
      host: 'pypi.org',
      requested_seq: LAUNCHED + 1,
    });
    expect(bottleStatus(state)).toBe('running (capability pending)');
    expect(effects.filter((e) => e.causedBySeq === LAUNCHED + 1)).toEqual([]);
  });

  it('ignores a decision for a request that is not the pending one (queued or unknown)', () => {
    const { state } = foldAll(
      running([
        request,
        second,
        ['capability.denied', { request_id: 'req-2', reason: 'no', by: 'cli' }],
        ['capability.approved', { request_id: 'req-9', by: 'cli' }],
      ]),
    );
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability?.request_id).toBe('req-1');
    expect(state.context.queuedCapabilities.map((r) => r.request_id)).toEqual(['req-2']);
  });

  it('queues a request made while another is pending, and hands it the turn when the first is denied', () => {
    const queued = foldAll(running([request, second])).state;
    expect(queued.context.pendingCapability?.request_id).toBe('req-1');
    expect(queued.context.queuedCapabilities).toEqual([
      {
        request_id: 'req-2',
        kind: 'dockerfile',
        // The body stays in the log; the live state, rewritten on every append, keeps its length.
        dockerfile_chars: 'RUN apt-get install -y jq'.length,
        reason: 'jq',
        requested_seq: LAUNCHED + 2,
      },
    ]);
    const denial: Step = ['capability.denied', { request_id: 'req-1', reason: 'not needed', by: 'cli' }];
    const { state } = foldAll(running([request, second, denial]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toMatchObject({
      request_id: 'req-2',
      kind: 'dockerfile',
      requested_seq: LAUNCHED + 2,
    });
    expect(state.context.queuedCapabilities).toEqual([]);
    expect(bottleStatus(state)).toBe('running (capability pending)');
  });

  it('a v1 request made while another was pending is ignored, as it was when it was recorded', () => {
    const v1Second: Step = [
      'capability.requested',
      { request_id: 'req-2', kind: 'egress', host: 'x.test', reason: 'x', queue_if_pending: false },
    ];
    const denial: Step = ['capability.denied', { request_id: 'req-1', reason: 'no', by: 'cli' }];
    const { state } = foldAll(running([request, v1Second, denial]));
    expect(state.context.pendingCapability).toBeNull();
    expect(state.context.queuedCapabilities).toEqual([]);
  });

  it('a resume starts with no queued requests (they belonged to the previous run)', () => {
    const { state } = foldAll(
      running([
        second,
        request,
        ['capability.approved', { request_id: 'req-2', by: 'cli' }],
        ['bottle.preserved', { reason: 'capability', resume_hint: `bottle resume ${ID}` }],
        ['bottle.resume_requested', { plan: samplePlan(ID, { args: ['--continue'] }) }],
      ]),
    );
    expect(state.value).toBe('preparing');
    expect(state.context.pendingCapability).toBeNull();
    expect(state.context.queuedCapabilities).toEqual([]);
  });

  it('clears the pending request when it is denied', () => {
    const { state } = foldAll(
      running([request, ['capability.denied', { request_id: 'req-1', reason: 'not needed', by: 'cli' }]]),
    );
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toBeNull();
    expect(bottleStatus(state)).toBe('running');
  });

  it('applies an approved Dockerfile request, preserves, and resumes with the new plan', () => {
    const resumedPlan = samplePlan(ID, { args: ['--continue'] });
    const { state, effects } = foldAll(
      running([
        second,
        ['capability.approved', { request_id: 'req-2', by: 'cli' }],
        ['bottle.preserved', { reason: 'capability', resume_hint: `bottle resume ${ID}` }],
        ['bottle.resume_requested', { plan: resumedPlan }],
      ]),
    );
    const apply = effects.find((e) => e.kind === 'apply_capability')!;
    expect(apply.causedBySeq).toBe(LAUNCHED + 2);
    expect(apply.params).toMatchObject({ approved_by: 'cli', request: { request_id: 'req-2', kind: 'dockerfile' } });
    expect(state.value).toBe('preparing');
    expect(state.context.resumes).toBe(1);
    expect(state.context.plan).toEqual(resumedPlan);
    expect(state.context.pendingCapability).toBeNull();
    expect(state.context.preservedReason).toBeNull();
    expect(effects.at(-1)).toMatchObject({ kind: 'prepare_state', causedBySeq: LAUNCHED + 4 });
  });

  it('applies an approved egress request live: keeps running, asks the gateway to be told, hands on the turn', () => {
    const approval: Step = ['capability.approved', { request_id: 'req-1', by: 'cli' }];
    const { state, effects } = foldAll(running([request, second, approval]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toMatchObject({ request_id: 'req-2', kind: 'dockerfile' });
    expect(state.context.queuedCapabilities).toEqual([]);
    const asked = effects.filter((e) => e.causedBySeq === LAUNCHED + 3);
    expect(asked).toEqual([
      {
        kind: 'answer_capability',
        identity: ID,
        causedBySeq: LAUNCHED + 3,
        params: {
          request: {
            request_id: 'req-1',
            kind: 'egress',
            host: 'pypi.org',
            port: 443,
            reason: 'pip install',
            requested_seq: LAUNCHED + 1,
          },
          decision: 'approved',
          reason: null,
          by: 'cli',
        },
      },
    ]);
    const granted: Step = ['egress.granted', { request_id: 'req-1', entry: 'pypi.org', live: true }];
    const after = foldAll(running([request, second, approval, granted]));
    expect(after.state.value).toBe('running');
    expect(after.effects.filter((e) => e.causedBySeq === LAUNCHED + 4)).toEqual([]);
  });

  it("tells the agent a denial with the operator's reason", () => {
    const denial: Step = ['capability.denied', { request_id: 'req-1', reason: 'use the mirror', by: 'ops' }];
    const { state, effects } = foldAll(running([request, denial]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toBeNull();
    const [answer] = effects.filter((e) => e.causedBySeq === LAUNCHED + 2);
    expect(answer).toMatchObject({
      kind: 'answer_capability',
      params: { request: { request_id: 'req-1' }, decision: 'denied', reason: 'use the mirror', by: 'ops' },
    });
    const answered: Step = ['capability.answered', { request_id: 'req-1', decision: 'denied', delivered: true }];
    expect(foldAll(running([request, denial, answered])).state.value).toBe('running');
  });

  it('v1 decisions keep their recorded meaning: an egress approval rebuilds, a denial asks for nothing', () => {
    const approval: Step = ['capability.approved', { request_id: 'req-1', by: 'cli', legacy_decision: true }];
    const approved = foldAll(running([request, approval]));
    expect(approved.state.value).toBe('applying_capability');
    expect(approved.effects.filter((e) => e.causedBySeq === LAUNCHED + 2).map((e) => e.kind)).toEqual([
      'apply_capability',
    ]);
    const denial: Step = ['capability.denied', { request_id: 'req-1', reason: 'no', by: 'cli', legacy_decision: true }];
    const denied = foldAll(running([request, denial]));
    expect(denied.state.value).toBe('running');
    expect(denied.effects.filter((e) => e.causedBySeq === LAUNCHED + 2)).toEqual([]);
  });

  it('a stored v1 decision is read as a legacy one', () => {
    const at = '2026-11-20T10:00:00.000Z';
    const approved = parseEvent({ seq: 3, type: 'capability.approved', at, v: 1, data: { request_id: 'r', by: 'c' } });
    expect(approved).toMatchObject({ v: 2, data: { request_id: 'r', by: 'c', legacy_decision: true } });
    const data = { request_id: 'r', reason: 'no', by: 'c' };
    const denied = parseEvent({ seq: 4, type: 'capability.denied', at, v: 1, data });
    expect(denied).toMatchObject({ v: 2, data: { ...data, legacy_decision: true } });
  });

  it('keeps running when telling the agent fails for good', () => {
    const denial: Step = ['capability.denied', { request_id: 'req-1', reason: 'no', by: 'cli' }];
    const failure = failed('answer_capability', true, 'the gateway did not take the decision in');
    const { state, effects } = foldAll(running([request, denial, failure]));
    expect(state.value).toBe('running');
    expect(state.context.lastError).toMatchObject({ effect: 'answer_capability', permanent: true });
    expect(effects.filter((e) => e.causedBySeq === LAUNCHED + 3)).toEqual([]);
  });

  it('keeps its end when telling the agent fails for good after it has left running', () => {
    const denial: Step = ['capability.denied', { request_id: 'req-1', reason: 'no', by: 'cli' }];
    const exited: Step = ['agent.exited', { code: 0, signal: null }];
    const failure = failed('answer_capability', true, 'the gateway did not take the decision in');
    const { state } = foldAll(running([request, denial, exited, failure]));
    expect(stateName(state)).toBe('snapshotting');
    expect(state.context.launchFailure).toBeNull();
    expect(state.context.lastError).toMatchObject({ effect: 'answer_capability', permanent: true });
  });

  it.each([
    ['preparing', 1],
    ['the parallel launch', NETWORKED],
  ])('ignores capability requests during %s', (_during, upTo) => {
    const { state } = foldAll(history([...launchSteps(ID).slice(0, upTo), request]));
    expect(stateName(state)).not.toBe('running');
    expect(state.context.pendingCapability).toBeNull();
  });
});

describe('failures', () => {
  it('records a transient failure and changes nothing else', () => {
    const before = foldAll(history(launchSteps(ID).slice(0, 2))).state;
    const [failure] = history(
      [['effect.failed', { effect: 'build_image', error: 'ECONNRESET', attempt: 1, permanent: false }]],
      undefined,
      3,
    );
    const { state, effects } = foldEvent(before, failure);
    expect(effects).toEqual([]);
    expect(state.value).toBe('building');
    expect(state.context.lastError).toEqual({
      effect: 'build_image',
      error: 'ECONNRESET',
      attempt: 1,
      permanent: false,
      seq: 3,
    });
  });

  it('tears down after a permanent failure before the launch, then fails', () => {
    const { state, effects } = foldAll(
      history([
        ...launchSteps(ID).slice(0, 2),
        ['effect.failed', { effect: 'build_image', error: 'RUN step exited 100', attempt: 1, permanent: true }],
        ['bottle.failed', { effect: 'build_image', error: 'RUN step exited 100' }],
      ]),
    );
    expect(effects.at(-1)).toMatchObject({
      kind: 'teardown_failed',
      params: { effect: 'build_image', error: 'RUN step exited 100' },
      causedBySeq: 3,
    });
    expect(state.value).toBe('failed');
    expect(isTerminal(state)).toBe(true);
  });

  it.each(['running', 'snapshotting'])('tears down after a permanent failure in %s', (target) => {
    const extra: Step[] = target === 'snapshotting' ? [['agent.exited', { code: 0, signal: null }]] : [];
    const events = running([...extra, failed('watch_agent', true, 'gone')]);
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('failing');
    expect(effects.at(-1)).toMatchObject({ kind: 'teardown_failed', params: { effect: 'watch_agent', error: 'gone' } });
  });

  it.each([
    [
      'preserving',
      [
        ['agent.exited', { code: 1, signal: null }],
        ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }],
      ],
    ],
    [
      'cleaning',
      [
        ['agent.exited', { code: 0, signal: null }],
        ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }],
      ],
    ],
    [
      'applying_capability',
      [
        [
          'capability.requested',
          { request_id: 'r', kind: 'dockerfile', dockerfile: 'FROM x', reason: 'r', queue_if_pending: true },
        ],
        ['capability.approved', { request_id: 'r', by: 'cli' }],
      ],
    ],
    ['failing', [failed('watch_agent', true, 'gone')]],
  ] as Array<[string, Step[]]>)(
    'goes straight to failed, requesting nothing, after a permanent failure in %s',
    (during, steps) => {
      const reached = foldAll(running(steps)).state;
      expect(reached.value).toBe(during);
      const [failure] = history([failed('cleanup', true, 'EACCES')], undefined, reached.seq + 1);
      const { state, effects } = foldEvent(reached, failure);
      expect(state.value).toBe('failed');
      expect(effects).toEqual([]);
    },
  );

  it('resumes a failed bottle', () => {
    const events = history([
      ...launchSteps(ID).slice(0, 1),
      ['effect.failed', { effect: 'prepare_state', error: 'EACCES', attempt: 1, permanent: true }],
      ['bottle.failed', { effect: 'prepare_state', error: 'EACCES' }],
      ['bottle.resume_requested', { plan: samplePlan(ID) }],
    ]);
    const { state } = foldAll(events);
    expect(state.value).toBe('preparing');
    expect(state.context.resumes).toBe(1);
    expect(state.context.lastError).toBeNull();
  });
});

describe('cleaned', () => {
  it('refuses a resume: the state folder is gone', () => {
    const cleaned = running([
      ['agent.exited', { code: 0, signal: null }],
      ['transcript.snapshotted', { files: 1, bytes: 1, missing: false }],
      ['bottle.cleaned', {}],
      ['bottle.resume_requested', { plan: samplePlan(ID) }],
    ]);
    const { state, effects } = foldAll(cleaned);
    expect(state.value).toBe('cleaned');
    expect(state.context.resumes).toBe(0);
    expect(effects.filter((e) => e.causedBySeq === cleaned.at(-1)!.seq)).toEqual([]);
  });
});

describe('observations', () => {
  it('advance seq and the egress decision number without touching the lifecycle', () => {
    const before = foldAll(running()).state;
    const observed = history(
      [
        ['egress.allowed', { n: 1, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' }],
        ['egress.denied', { n: 2, host: 'evil.test', port: 443, method: 'CONNECT', reason: 'not in allowlist' }],
      ],
      undefined,
      LAUNCHED + 1,
    );
    const { state, effects } = foldAll(observed, before);
    expect(effects).toEqual([]);
    expect(state.value).toBe('running');
    expect(state.seq).toBe(LAUNCHED + 2);
    expect(state.context.lastEgressDecision).toBe(2);
    expect({ ...state.context, seq: LAUNCHED, lastEgressDecision: 0 }).toEqual(before.context);
  });

  it('restart the decision numbers with each gateway container', () => {
    const plan = samplePlan(ID);
    const events = history([
      ...preLaunchSteps(ID),
      ['egress.allowed', { n: 5, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' }],
      gatewayStarted(plan),
    ]);
    expect(foldAll(events.slice(0, -1)).state.context.lastEgressDecision).toBe(5);
    expect(foldAll(events).state.context.lastEgressDecision).toBe(0);
  });
});

describe('status and commands', () => {
  const stop: Command = { type: 'bottle.stop_requested', data: { by: 'cli' } };
  const approve: Command = { type: 'capability.approved', data: { request_id: 'req-1', by: 'cli' } };
  const deny: Command = { type: 'capability.denied', data: { request_id: 'req-1', reason: 'no', by: 'cli' } };
  const resume: Command = { type: 'bottle.resume_requested', data: { plan: samplePlan(ID) } };
  const request: Step = [
    'capability.requested',
    { request_id: 'req-1', kind: 'egress', host: 'pypi.org', port: 443, reason: 'pip', queue_if_pending: true },
  ];
  const exitSteps: Step[] = [
    ['agent.exited', { code: 1, signal: null }],
    ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }],
  ];
  const states: Record<string, () => BottleState> = {
    idle: () => initialBottleState(ID),
    preparing: () => foldAll(history(launchSteps(ID).slice(0, 1))).state,
    launching: () => foldAll(history(preLaunchSteps(ID))).state,
    running: () => foldAll(running()).state,
    'running with req-1 pending': () => foldAll(running([request])).state,
    preserved: () =>
      foldAll(running([...exitSteps, ['bottle.preserved', { reason: 'crash', resume_hint: 'r' }]])).state,
    failed: () => {
      const failure: Step[] = [
        failed('prepare_state', true, 'EACCES'),
        ['bottle.failed', { effect: 'prepare_state', error: 'EACCES' }],
      ];
      return foldAll(history([...launchSteps(ID).slice(0, 1), ...failure])).state;
    },
    cleaned: () =>
      foldAll(
        running([
          ['agent.exited', { code: 0, signal: null }],
          ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }],
          ['bottle.cleaned', {}],
        ]),
      ).state,
  };

  it.each([
    ['idle', [false, false, false, false]],
    ['preparing', [true, false, false, false]],
    ['launching', [true, false, false, false]],
    ['running', [true, false, false, false]],
    ['running with req-1 pending', [true, true, true, false]],
    ['preserved', [false, false, false, true]],
    ['failed', [false, false, false, true]],
    ['cleaned', [false, false, false, false]],
  ] as Array<[string, boolean[]]>)('in %s, accepts stop/approve/deny/resume as %j', (name, expected) => {
    const state = states[name]();
    expect([stop, approve, deny, resume].map((command) => accepts(state, command))).toEqual(expected);
  });

  it('does not accept a decision naming a request other than the pending one', () => {
    const state = states['running with req-1 pending']();
    expect(accepts(state, { type: 'capability.approved', data: { request_id: 'req-2', by: 'cli' } })).toBe(false);
    expect(accepts(state, { type: 'capability.denied', data: { request_id: 'req-2', reason: 'x', by: 'cli' } })).toBe(
      false,
    );
  });

  it.each([
    ['the sample plan', samplePlan(ID), 'launching (gateway starting, agent starting)'],
    ['a pipelock plan', pipelockPlan(ID), 'launching (gateway starting, pipelock starting, agent starting)'],
    ['a plan with a host route', hostRoutePlan(ID), 'launching (gateway starting, agent waiting)'],
  ] as Array<[string, BottlePlan, string]>)('shows the launch regions for %s, not unused ones', (_, plan, status) => {
    const state = foldAll(history(preLaunchSteps(ID, plan))).state;
    expect(stateName(state)).toBe('launching');
    expect(isTerminal(state)).toBe(false);
    expect(bottleStatus(state)).toBe(status);
  });

  it('shows a launch region that failed while the others still start', () => {
    const state = foldAll(history([...preLaunchSteps(ID), failed('start_gateway', true)])).state;
    expect(bottleStatus(state)).toBe('launching (gateway failed, agent starting)');
  });

  it('reads back a cached state of this machine version, and refuses one of another', () => {
    const state = foldAll(history(preLaunchSteps(ID))).state;
    const cached = JSON.parse(JSON.stringify(state)) as Record<string, unknown>;
    expect(cached.machine).toBe(MACHINE_VERSION);
    expect(parseBottleState(cached)).toEqual(state);
    expect(parseBottleState({ ...cached, machine: MACHINE_VERSION - 1 })).toBeNull();
    expect(parseBottleState({ ...cached, machine: MACHINE_VERSION + 1 })).toBeNull();
    const { machine: _machine, ...unversioned } = cached;
    expect(parseBottleState(unversioned)).toBeNull();
    expect(parseBottleState({ ...cached, context: { identity: ID } })).toBeNull();
  });
});

describe('fold mechanics', () => {
  it('treats an already folded event as a no-op, so a retried job is harmless', () => {
    const events = running();
    const { state } = foldAll(events);
    const again = foldEvent(state, events[2]);
    expect(again.state).toEqual(state);
    expect(again.effects).toEqual([]);
  });

  it('rejects a history with a gap', () => {
    const events = running();
    expect(() => foldHistory(ID, [events[0], events[2]])).toThrow(HistoryGapError);
    expect(() => foldEvent(initialBottleState(ID), events[1])).toThrow(/expected seq 1, got 2/);
  });

  it('foldHistory agrees with folding one event at a time through a JSON round trip', () => {
    const plan = pipelockPlan(ID);
    const events = history([
      ...preLaunchSteps(ID, plan),
      agentStarted(plan),
      ['egress.allowed', { n: 1, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' }],
      gatewayStarted(plan),
      ['bottle.stop_requested', { by: 'cli' }],
      pipelockStarted(plan),
      gatewayReady,
      ['egress.denied', { n: 2, host: 'evil.test', port: 443, method: 'CONNECT', reason: 'not in allowlist' }],
      ['agent.exited', { code: 143, signal: 'SIGTERM' }],
      ['egress.allowed', { n: 3, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' }],
    ]);
    let state = initialBottleState(ID);
    for (const event of events) state = JSON.parse(JSON.stringify(foldEvent(state, event).state)) as BottleState;
    const whole = foldHistory(ID, events);
    expect(whole.state.value).toBe('snapshotting');
    expect(statesEqual(whole.state, state)).toBe(true);
    expect(whole.state).toEqual(state);
    expect(whole.effects).toEqual([]);
  });

  it('continues a parallel launch from a JSON-cached state', () => {
    const plan = samplePlan(ID);
    const events = history([...preLaunchSteps(ID), gatewayStarted(plan), agentStarted(plan), gatewayReady]);
    const cached = JSON.parse(JSON.stringify(foldAll(events.slice(0, -1)).state)) as BottleState;
    const { state, effects } = foldEvent(cached, events.at(-1)!);
    expect(state.value).toBe('running');
    expect(kinds(effects)).toEqual(['watch_agent']);
  });

  it('returns the effects of the last event from foldHistory', () => {
    const { effects } = foldHistory(ID, running());
    expect(effects).toEqual([{ kind: 'watch_agent', identity: ID, causedBySeq: LAUNCHED, params: {} }]);
  });

  it('statesEqual ignores key order but not values', () => {
    const a = foldHistory(ID, running()).state;
    const reordered = JSON.parse(
      JSON.stringify({ seq: a.seq, context: a.context, value: a.value, machine: a.machine }),
    ) as BottleState;
    expect(statesEqual(a, reordered)).toBe(true);
    expect(statesEqual(a, { ...a, context: { ...a.context, resumes: 1 } })).toBe(false);
    expect(statesEqual(a, { ...a, value: 'preserved' })).toBe(false);
    const launchingState = foldHistory(ID, history(preLaunchSteps(ID))).state;
    const otherRegions = launching({ gateway: 'ready', agent: 'starting' });
    expect(statesEqual(launchingState, { ...launchingState, value: otherRegions })).toBe(false);
  });
});
