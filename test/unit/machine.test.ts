import { describe, expect, it } from 'vitest';
import {
  bottleStatus,
  foldEvent,
  foldHistory,
  HistoryGapError,
  initialBottleState,
  isTerminal,
  statesEqual,
  type BottleState,
} from '../../src/machines/index.js';
import type { EffectRequest } from '../../src/effects/types.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { history, launchSteps, samplePlan, type Step } from '../golden/fixtures.js';

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

describe('launch', () => {
  it('walks idle -> running, requesting one effect per step caused by that step', () => {
    const events = running();
    let state = initialBottleState(ID);
    expect(state.value).toBe('idle');
    const seen: Array<[string, string[], number[]]> = [];
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
      ['starting_gateway', ['start_gateway'], [4]],
      ['launching', ['start_agent'], [5]],
      ['running', ['watch_agent'], [6]],
    ]);
    expect(state.context.plan).toEqual(samplePlan(ID));
    expect(state.seq).toBe(6);
    expect(state.context.seq).toBe(6);
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
  ] as const)('preserves after exit %i with reason %s', (code, signal, reason) => {
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
    expect(effects.at(-1)).toMatchObject({ kind: 'snapshot_transcript', params: { code: 137, signal: 'SIGKILL' }, causedBySeq: 7 });
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
    expect(effects.at(-1)).toMatchObject({ kind: 'stop_agent', params: { by: 'cli' }, causedBySeq: 7 });
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

  it('remembers a stop requested during launch and asks for it on entering running', () => {
    const steps = launchSteps(ID);
    const events = history([...steps.slice(0, 3), ['bottle.stop_requested', { by: 'cli' }], ...steps.slice(3)]);
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('running');
    const lastCause = events.at(-1)!.seq;
    expect(effects.filter((e) => e.causedBySeq === lastCause).map((e) => [e.kind, e.params])).toEqual([
      ['watch_agent', {}],
      ['stop_agent', { by: 'cli' }],
    ]);
    expect(effects.some((e) => e.kind === 'stop_agent' && e.causedBySeq !== lastCause)).toBe(false);
  });
});

describe('capability requests', () => {
  const request: Step = ['capability.requested', { request_id: 'req-1', kind: 'egress', host: 'pypi.org', port: 443, reason: 'pip install', queue_if_pending: true }];
  const second: Step = ['capability.requested', { request_id: 'req-2', kind: 'dockerfile', dockerfile: 'RUN apt-get install -y jq', reason: 'jq', queue_if_pending: true }];

  it('keeps running with the request pending', () => {
    const { state, effects } = foldAll(running([request]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toMatchObject({ request_id: 'req-1', host: 'pypi.org', requested_seq: 7 });
    expect(bottleStatus(state)).toBe('running (capability pending)');
    expect(effects.filter((e) => e.causedBySeq === 7)).toEqual([]);
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
      { request_id: 'req-2', kind: 'dockerfile', dockerfile: 'RUN apt-get install -y jq', reason: 'jq', requested_seq: 8 },
    ]);
    const { state } = foldAll(running([request, second, ['capability.denied', { request_id: 'req-1', reason: 'not needed', by: 'cli' }]]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toMatchObject({ request_id: 'req-2', kind: 'dockerfile', requested_seq: 8 });
    expect(state.context.queuedCapabilities).toEqual([]);
    expect(bottleStatus(state)).toBe('running (capability pending)');
  });

  it('a v1 request made while another was pending is ignored, as it was when it was recorded', () => {
    const v1Second: Step = ['capability.requested', { request_id: 'req-2', kind: 'egress', host: 'x.test', reason: 'x', queue_if_pending: false }];
    const { state } = foldAll(running([request, v1Second, ['capability.denied', { request_id: 'req-1', reason: 'no', by: 'cli' }]]));
    expect(state.context.pendingCapability).toBeNull();
    expect(state.context.queuedCapabilities).toEqual([]);
  });

  it('a resume starts with no queued requests (they belonged to the previous run)', () => {
    const { state } = foldAll(
      running([
        request,
        second,
        ['capability.approved', { request_id: 'req-1', by: 'cli' }],
        ['bottle.preserved', { reason: 'capability', resume_hint: `bottle resume ${ID}` }],
        ['bottle.resume_requested', { plan: samplePlan(ID, { args: ['--continue'] }) }],
      ]),
    );
    expect(state.value).toBe('preparing');
    expect(state.context.pendingCapability).toBeNull();
    expect(state.context.queuedCapabilities).toEqual([]);
  });

  it('clears the pending request when it is denied', () => {
    const { state } = foldAll(running([request, ['capability.denied', { request_id: 'req-1', reason: 'not needed', by: 'cli' }]]));
    expect(state.value).toBe('running');
    expect(state.context.pendingCapability).toBeNull();
    expect(bottleStatus(state)).toBe('running');
  });

  it('applies an approved request, preserves, and resumes with the new plan', () => {
    const resumedPlan = samplePlan(ID, { args: ['--continue'] });
    const { state, effects } = foldAll(
      running([
        request,
        ['capability.approved', { request_id: 'req-1', by: 'cli' }],
        ['bottle.preserved', { reason: 'capability', resume_hint: `bottle resume ${ID}` }],
        ['bottle.resume_requested', { plan: resumedPlan }],
      ]),
    );
    const apply = effects.find((e) => e.kind === 'apply_capability')!;
    expect(apply.causedBySeq).toBe(8);
    expect(apply.params).toMatchObject({ approved_by: 'cli', request: { request_id: 'req-1', host: 'pypi.org', port: 443 } });
    expect(state.value).toBe('preparing');
    expect(state.context.resumes).toBe(1);
    expect(state.context.plan).toEqual(resumedPlan);
    expect(state.context.pendingCapability).toBeNull();
    expect(state.context.preservedReason).toBeNull();
    expect(effects.at(-1)).toMatchObject({ kind: 'prepare_state', causedBySeq: 10 });
  });

  it('ignores capability requests outside running', () => {
    const { state } = foldAll(history([launchSteps(ID)[0], request]));
    expect(state.value).toBe('preparing');
    expect(state.context.pendingCapability).toBeNull();
  });
});

describe('failures', () => {
  it('records a transient failure and changes nothing else', () => {
    const before = foldAll(history(launchSteps(ID).slice(0, 2))).state;
    const [failure] = history([['effect.failed', { effect: 'build_image', error: 'ECONNRESET', attempt: 1, permanent: false }]], undefined, 3);
    const { state, effects } = foldEvent(before, failure);
    expect(effects).toEqual([]);
    expect(state.value).toBe('building');
    expect(state.context.lastError).toEqual({ effect: 'build_image', error: 'ECONNRESET', attempt: 1, permanent: false, seq: 3 });
  });

  it('tears down after a permanent failure during launch, then fails', () => {
    const { state, effects } = foldAll(
      history([
        ...launchSteps(ID).slice(0, 2),
        ['effect.failed', { effect: 'build_image', error: 'RUN step exited 100', attempt: 1, permanent: true }],
        ['bottle.failed', { effect: 'build_image', error: 'RUN step exited 100' }],
      ]),
    );
    expect(effects.at(-1)).toMatchObject({ kind: 'teardown_failed', params: { effect: 'build_image', error: 'RUN step exited 100' }, causedBySeq: 3 });
    expect(state.value).toBe('failed');
    expect(isTerminal(state)).toBe(true);
  });

  it.each(['running', 'snapshotting'])('tears down after a permanent failure in %s', (target) => {
    const extra: Step[] = target === 'snapshotting' ? [['agent.exited', { code: 0, signal: null }]] : [];
    const events = running([...extra, ['effect.failed', { effect: 'watch_agent', error: 'gone', attempt: 3, permanent: true }]]);
    const { state, effects } = foldAll(events);
    expect(state.value).toBe('failing');
    expect(effects.at(-1)?.kind).toBe('teardown_failed');
  });

  it.each([
    ['preserving', [['agent.exited', { code: 1, signal: null }], ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }]]],
    ['cleaning', [['agent.exited', { code: 0, signal: null }], ['transcript.snapshotted', { files: 0, bytes: 0, missing: true }]]],
    ['applying_capability', [['capability.requested', { request_id: 'r', kind: 'egress', host: 'x.test', port: 443, reason: 'r', queue_if_pending: true }], ['capability.approved', { request_id: 'r', by: 'cli' }]]],
    ['failing', [['effect.failed', { effect: 'watch_agent', error: 'gone', attempt: 3, permanent: true }]]],
  ] as Array<[string, Step[]]>)('goes straight to failed, requesting nothing, after a permanent failure in %s', (during, steps) => {
    const reached = foldAll(running(steps)).state;
    expect(reached.value).toBe(during);
    const [failure] = history([['effect.failed', { effect: 'cleanup', error: 'EACCES', attempt: 5, permanent: true }]], undefined, reached.seq + 1);
    const { state, effects } = foldEvent(reached, failure);
    expect(state.value).toBe('failed');
    expect(effects).toEqual([]);
  });

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
      7,
    );
    const { state, effects } = foldAll(observed, before);
    expect(effects).toEqual([]);
    expect(state.value).toBe('running');
    expect(state.seq).toBe(8);
    expect(state.context.lastEgressDecision).toBe(2);
    expect({ ...state.context, seq: 6, lastEgressDecision: 0 }).toEqual(before.context);
  });
});

describe('fold mechanics', () => {
  it('treats an already folded event as a no-op, so a retried job is harmless', () => {
    const events = running();
    const { state } = foldAll(events);
    const again = foldEvent(state, events[2]);
    expect(again.state).toBe(state);
    expect(again.effects).toEqual([]);
  });

  it('rejects a history with a gap', () => {
    const events = running();
    expect(() => foldHistory(ID, [events[0], events[2]])).toThrow(HistoryGapError);
    expect(() => foldEvent(initialBottleState(ID), events[1])).toThrow(/expected seq 1, got 2/);
  });

  it('foldHistory agrees with folding one event at a time through a JSON round trip', () => {
    const events = running([
      ['egress.allowed', { n: 1, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' }],
      ['bottle.stop_requested', { by: 'cli' }],
      ['egress.denied', { n: 2, host: 'evil.test', port: 443, method: 'CONNECT', reason: 'not in allowlist' }],
      ['agent.exited', { code: 143, signal: 'SIGTERM' }],
      ['egress.allowed', { n: 3, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' }],
    ]);
    let state = initialBottleState(ID);
    for (const event of events) state = JSON.parse(JSON.stringify(foldEvent(state, event).state)) as BottleState;
    const whole = foldHistory(ID, events);
    expect(statesEqual(whole.state, state)).toBe(true);
    expect(whole.state).toEqual(state);
    expect(whole.effects).toEqual([]);
  });

  it('returns the effects of the last event from foldHistory', () => {
    const { effects } = foldHistory(ID, running());
    expect(effects).toEqual([{ kind: 'watch_agent', identity: ID, causedBySeq: 6, params: {} }]);
  });

  it('statesEqual ignores key order but not values', () => {
    const a = foldHistory(ID, running()).state;
    const reordered = JSON.parse(JSON.stringify({ seq: a.seq, context: a.context, value: a.value })) as BottleState;
    expect(statesEqual(a, reordered)).toBe(true);
    expect(statesEqual(a, { ...a, context: { ...a.context, resumes: 1 } })).toBe(false);
    expect(statesEqual(a, { ...a, value: 'preserved' })).toBe(false);
  });
});
