import { describe, expect, it } from 'vitest';
import {
  CURRENT_VERSION,
  EVENT_TYPES,
  InvalidEventError,
  isObservation,
  LifecycleEventSchema,
  parseEvent,
  parseNewEventData,
} from '../../src/events/schema.js';
import { MissingUpcasterError, registerUpcaster, signalForExitCode, upcastData } from '../../src/events/upcast.js';
import { samplePlan } from '../golden/fixtures.js';

const at = '2026-11-20T10:00:00.000Z';

describe('parseEvent', () => {
  it('accepts every event type in its current version', () => {
    expect(EVENT_TYPES).toHaveLength(21);
    const event = parseEvent({ seq: 1, type: 'bottle.start_requested', at, v: 1, data: { plan: samplePlan() } });
    expect(event.type).toBe('bottle.start_requested');
    expect(parseEvent({ seq: 2, type: 'bottle.cleaned', at, v: 1, data: {} })).toEqual({ seq: 2, type: 'bottle.cleaned', at, v: 1, data: {} });
  });

  it('rejects unknown types, bad data and bad envelopes with the seq and type in one line', () => {
    expect(() => parseEvent({ seq: 4, type: 'bottle.exploded', at, v: 1, data: {} })).toThrow(/event 4 \(bottle\.exploded\): unknown event type/);
    expect(() => parseEvent({ seq: 5, type: 'image.built', at, v: 1, data: { tag: 't' } })).toThrow(/event 5 \(image\.built\): data\.gateway_tag/);
    expect(() => parseEvent({ seq: 0, type: 'bottle.cleaned', at, v: 1, data: {} })).toThrow(InvalidEventError);
    expect(() => parseEvent({ seq: 1, type: 'bottle.cleaned', at: 'yesterday', v: 1, data: {} })).toThrow(/at/);
    expect(() => parseEvent('not an event')).toThrow(/malformed event envelope/);
  });

  it('refuses an event written by a newer schema version instead of guessing', () => {
    expect(() => parseEvent({ seq: 1, type: 'bottle.cleaned', at, v: 2, data: {} })).toThrow(/newer than this claude-bottle understands/);
  });

  it('treats a record without a version as v1', () => {
    const event = parseEvent({ seq: 9, type: 'agent.exited', at, data: { exit_code: 1 } });
    expect(event).toMatchObject({ v: 2, data: { code: 1, signal: null } });
  });
});

describe('upcasting agent.exited v1 -> v2', () => {
  it.each([
    [0, null],
    [1, null],
    [128, null],
    [130, 'SIGINT'],
    [137, 'SIGKILL'],
    [143, 'SIGTERM'],
    [160, 'SIG32'],
  ])('exit_code %i becomes signal %s', (code, signal) => {
    const event = parseEvent({ seq: 3, type: 'agent.exited', at, v: 1, data: { exit_code: code } });
    expect(event).toEqual({ seq: 3, type: 'agent.exited', at, v: CURRENT_VERSION['agent.exited'], data: { code, signal } });
    expect(signalForExitCode(code)).toBe(signal);
  });

  it('leaves a malformed v1 record for the validator to reject', () => {
    expect(() => parseEvent({ seq: 3, type: 'agent.exited', at, v: 1, data: { exit_code: 'x' } })).toThrow(/event 3 \(agent\.exited\)/);
  });

  it('current v2 records pass through unchanged', () => {
    expect(parseEvent({ seq: 3, type: 'agent.exited', at, v: 2, data: { code: 137, signal: 'SIGKILL' } }).data).toEqual({ code: 137, signal: 'SIGKILL' });
  });
});

describe('upcaster registry', () => {
  it('chains steps in order and names a missing step', () => {
    registerUpcaster('test.chained', 1, (d) => ({ ...d, a: 1 }));
    registerUpcaster('test.chained', 2, (d) => ({ ...d, b: (d.a as number) + 1 }));
    expect(upcastData('test.chained', 1, 3, {})).toEqual({ a: 1, b: 2 });
    expect(() => upcastData('test.chained', 1, 4, {})).toThrow(MissingUpcasterError);
    expect(() => registerUpcaster('test.chained', 1, (d) => d)).toThrow(/already registered/);
  });
});

describe('observations', () => {
  it('are exactly the egress decisions', () => {
    expect(EVENT_TYPES.filter(isObservation)).toEqual(['egress.allowed', 'egress.denied']);
  });

  const egress = { n: 7, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' };
  const cases: Array<[string, unknown]> = [
    ['valid', { seq: 12, type: 'egress.allowed', at, v: 1, data: egress }],
    ['valid with offset', { seq: 12, type: 'egress.denied', at: '2026-11-20T10:00:00+02:00', v: 1, data: egress }],
    ['day 31', { seq: 12, type: 'egress.denied', at: '2026-12-31T23:59:59.123456Z', v: 1, data: egress }],
    ['extra keys', { seq: 12, type: 'egress.allowed', at, v: 1, data: { ...egress, extra: true } }],
    ['port out of range', { seq: 12, type: 'egress.allowed', at, v: 1, data: { ...egress, port: 70000 } }],
    ['negative n', { seq: 12, type: 'egress.allowed', at, v: 1, data: { ...egress, n: -1 } }],
    ['missing host', { seq: 12, type: 'egress.allowed', at, v: 1, data: { ...egress, host: undefined } }],
    ['bad time', { seq: 12, type: 'egress.allowed', at: '2026-11-20 10:00', v: 1, data: egress }],
    ['month 13', { seq: 12, type: 'egress.allowed', at: '2026-13-20T10:00:00Z', v: 1, data: egress }],
    ['fractional seq', { seq: 1.5, type: 'egress.allowed', at, v: 1, data: egress }],
  ];
  it.each(cases)('the fast path agrees with the zod schema: %s', (_name, raw) => {
    const viaZod = LifecycleEventSchema.safeParse(raw);
    if (viaZod.success) expect(parseEvent(raw)).toEqual(viaZod.data);
    else expect(() => parseEvent(raw)).toThrow(InvalidEventError);
  });
});

describe('parseNewEventData', () => {
  it('validates data for the current version before it is appended', () => {
    expect(parseNewEventData('bottle.stop_requested', { by: 'cli' })).toEqual({ by: 'cli' });
    expect(() => parseNewEventData('agent.exited', { exit_code: 1 })).toThrow(/new agent.exited event: code/);
    expect(() => parseNewEventData('nope', {})).toThrow(/unknown event type/);
  });
});
