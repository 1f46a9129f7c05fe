import { isDeepStrictEqual as isDeepEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  CURRENT_VERSION,
  EVENT_TYPES,
  InvalidEventError,
  isObservation,
  LifecycleEventSchema,
  parseEvent,
  parseNewEventData,
  parseStoredEvent,
} from '../../../src/events/schema.js';
import { MissingUpcasterError, registerUpcaster, signalForExitCode, upcastData } from '../../../src/events/upcast.js';
import { samplePlan } from '../../golden/fixtures.js';

const at = '2026-11-20T10:00:00.000Z';

describe('parseEvent', () => {
  it('accepts every event type in its current version', () => {
    for (const type of EVENT_TYPES) expect(CURRENT_VERSION[type], type).toBeGreaterThanOrEqual(1);
    const event = parseEvent({ seq: 1, type: 'bottle.start_requested', at, v: 1, data: { plan: samplePlan() } });
    expect(event.type).toBe('bottle.start_requested');
    expect(parseEvent({ seq: 2, type: 'bottle.cleaned', at, v: 1, data: {} })).toEqual({
      seq: 2,
      type: 'bottle.cleaned',
      at,
      v: 1,
      data: {},
    });
  });

  it('rejects unknown types, bad data and bad envelopes with the seq and type in one line', () => {
    expect(() => parseEvent({ seq: 4, type: 'bottle.exploded', at, v: 1, data: {} })).toThrow(
      /event 4 \(bottle\.exploded\): unknown event type/,
    );
    expect(() => parseEvent({ seq: 5, type: 'image.built', at, v: 1, data: { tag: 't' } })).toThrow(
      /event 5 \(image\.built\): data\.gateway_tag/,
    );
    expect(() => parseEvent({ seq: 0, type: 'bottle.cleaned', at, v: 1, data: {} })).toThrow(InvalidEventError);
    expect(() => parseEvent({ seq: 1, type: 'bottle.cleaned', at: 'yesterday', v: 1, data: {} })).toThrow(/at/);
    expect(() => parseEvent('not an event')).toThrow(/malformed event envelope/);
  });

  it('refuses an event written by a newer schema version instead of guessing', () => {
    expect(() => parseEvent({ seq: 1, type: 'bottle.cleaned', at, v: 2, data: {} })).toThrow(
      /newer than this claude-bottle understands/,
    );
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
    expect(event).toEqual({
      seq: 3,
      type: 'agent.exited',
      at,
      v: CURRENT_VERSION['agent.exited'],
      data: { code, signal },
    });
    expect(signalForExitCode(code)).toBe(signal);
  });

  it('leaves a malformed v1 record for the validator to reject', () => {
    expect(() => parseEvent({ seq: 3, type: 'agent.exited', at, v: 1, data: { exit_code: 'x' } })).toThrow(
      /event 3 \(agent\.exited\)/,
    );
  });

  it('current v2 records pass through unchanged', () => {
    expect(parseEvent({ seq: 3, type: 'agent.exited', at, v: 2, data: { code: 137, signal: 'SIGKILL' } }).data).toEqual(
      { code: 137, signal: 'SIGKILL' },
    );
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
  it("are exactly the egress decisions, the agent gateway's and the build gateway's", () => {
    expect(EVENT_TYPES.filter(isObservation)).toEqual([
      'egress.allowed',
      'egress.denied',
      'egress.audited',
      'egress.summary',
      'build.egress',
    ]);
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

  /** What parseEvent's zod path makes of an egress event: the schema, after the envelope's default version. */
  function viaZod(raw: unknown) {
    const record = raw as Record<string, unknown> | null;
    const versionless = typeof record === 'object' && record !== null && record.v === undefined;
    const defaulted = versionless ? { ...record, v: 1 } : raw;
    return LifecycleEventSchema.safeParse(defaulted);
  }

  type Outcome = { event: unknown } | { error: string };
  function outcome(parse: () => unknown): Outcome {
    try {
      const event = parse();
      return { event };
    } catch (err) {
      if (!(err instanceof InvalidEventError)) throw err;
      return { error: err.message };
    }
  }

  /** A small seeded generator, so a failure names a case that can be replayed. */
  function generator(seed: number) {
    let state = seed >>> 0;
    const next = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)];
    return { next, pick };
  }

  class Decision {
    readonly n = 1;
    readonly host = 'h';
    readonly port = 443;
    readonly method = 'm';
    readonly reason = 'r';
  }

  const TRICKY_TIMES = [
    at,
    '2026-11-30T10:00:00Z',
    '2026-11-31T10:00:00Z',
    '2026-12-31T23:59:59.999999+05:30',
    '2026-04-31T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2024-02-29T00:00:00Z',
    '2000-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-11-30T10:00Z',
    '2026-11-30T10:00+0200',
    '2026-11-30T10:00:00-99:99',
    '2026-11-30T24:00:00Z',
    '2026-11-30T10:60:00Z',
    '2026-11-30T10:00:60Z',
    '2026-11-30T10:00:00.Z',
    '2026-11-30t10:00:00z',
    '2026-11-30T10:00:00',
    ' 2026-11-30T10:00:00Z',
    '2026-11-30T10:00:00Z\n',
    '+02026-11-30T10:00:00Z',
    '',
  ];

  function randomTime(g: ReturnType<typeof generator>): unknown {
    const base = g.pick(TRICKY_TIMES);
    if (g.next() < 0.5 || base.length === 0) return g.next() < 0.05 ? g.pick([undefined, null, 0, new Date(0)]) : base;
    // Mutate one character: most mutants are invalid, some are valid in surprising ways.
    const i = Math.floor(g.next() * base.length);
    const replacement = g.pick(['0', '1', '2', '3', '9', 'T', 'Z', ':', '+', '-', '.', ' ', '']);
    return base.slice(0, i) + replacement + base.slice(i + 1);
  }

  function randomData(g: ReturnType<typeof generator>): unknown {
    const shape = g.next();
    if (shape < 0.05) return g.pick([null, [], 'data', 7, new Map(), new Date(0)]);
    const fields: Record<string, unknown> = {
      n: g.pick([0, 7, -0, -1, 1.5, 2 ** 53, '7', NaN, Infinity, null, undefined]),
      host: g.pick(['github.com', '', 'é"\\', 5, null, undefined]),
      port: g.pick([0, 443, 65535, 65536, -1, 80.5, '443', NaN, undefined]),
      method: g.pick(['CONNECT', '', 1, undefined]),
      reason: g.pick(['allowlisted', '', false, undefined]),
    };
    // Mostly valid values, so the accepting side is well covered too.
    for (const [key, value] of Object.entries({ n: 3, host: 'a.test', port: 80, method: 'GET', reason: 'ok' })) {
      if (g.next() < 0.6) fields[key] = value;
    }
    if (g.next() < 0.1) delete fields[g.pick(Object.keys(fields))];
    if (g.next() < 0.1) fields.extra = true;
    if (shape < 0.08) return Object.assign(Object.create(null) as object, fields);
    if (shape < 0.1) return { ...fields, then: () => undefined, catch: () => undefined };
    if (shape < 0.12) return new Decision();
    return fields;
  }

  it('the fast path accepts exactly what zod accepts, with the same result, on generated events', () => {
    const g = generator(20261130);
    const mismatches: unknown[] = [];
    for (let i = 0; i < 20_000; i++) {
      const fields = {
        seq: g.pick([1, 2, 12, 0, -1, 1.5, '1', NaN, Infinity, 2 ** 53, null, undefined]),
        type: g.pick(['egress.allowed', 'egress.allowed', 'egress.denied', 'egress.other', 'bottle.cleaned', 1]),
        at: randomTime(g),
        v: g.pick([1, 1, 1, undefined, 2, 0, '1', null, true]),
        data: randomData(g),
      };
      const raw = g.next() < 0.03 ? Object.assign(Object.create(null) as object, fields) : fields;
      const expected = viaZod(raw);
      const actual = outcome(() => parseEvent(raw));
      // Key order too: the stringified forms must match as well.
      const sameEvent = (event: unknown) =>
        JSON.stringify(expected.data) === JSON.stringify(event) && isDeepEqual(expected.data, event);
      const agrees = expected.success ? 'event' in actual && sameEvent(actual.event) : 'error' in actual;
      // Taken apart, as the log reads it: the same outcome, error message included.
      const { seq, type, at: time, v, data } = fields;
      const stored = outcome(() => parseStoredEvent(seq as number, type, time, v as number, data));
      if (!agrees || !isDeepEqual(stored, actual)) {
        mismatches.push({ case: i, raw, zod: expected.success, actual, stored });
      }
      if (mismatches.length > 5) break;
    }
    expect(mismatches).toEqual([]);
  });

  it('keeps what inspection found when a stored refusal is read back', () => {
    const detail = { class: 'canary', rule: 'aws_access_key_id', where: 'url', fingerprint: 'canary:0123456789ab' };
    const data = { n: 3, host: 'exfil.test', port: 8080, method: 'GET', reason: 'canary', detail };
    const event = parseStoredEvent(4, 'egress.denied', at, 1, data);
    expect(event.data).toEqual(data);
  });

  it('remembers only a time that passed: an empty or malformed one right after it still fails', () => {
    const egress = { n: 7, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' };
    for (const time of [at, '', at, 'yesterday', at, undefined]) {
      const raw = { seq: 1, type: 'egress.allowed', at: time, v: 1, data: egress };
      expect('event' in outcome(() => parseEvent(raw)), String(time)).toBe(LifecycleEventSchema.safeParse(raw).success);
    }
  });

  it('checks `at` exactly as zod does on every day of every month, leap years included', () => {
    const egress = { n: 7, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' };
    const disagreements: string[] = [];
    for (const year of ['1900', '2000', '2023', '2024', '2026']) {
      for (let month = 0; month <= 13; month++) {
        for (let day = 0; day <= 32; day++) {
          const time = `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}T12:34:56.789+01:00`;
          const raw = { seq: 1, type: 'egress.denied', at: time, v: 1, data: egress };
          const accepted = 'event' in outcome(() => parseEvent(raw));
          if (accepted !== LifecycleEventSchema.safeParse(raw).success) disagreements.push(time);
        }
      }
    }
    expect(disagreements).toEqual([]);
  });
});

describe('parseNewEventData', () => {
  it('validates data for the current version before it is appended', () => {
    expect(parseNewEventData('bottle.stop_requested', { by: 'cli' })).toEqual({ by: 'cli' });
    expect(() => parseNewEventData('agent.exited', { exit_code: 1 })).toThrow(/new agent.exited event: code/);
    expect(() => parseNewEventData('nope', {})).toThrow(/unknown event type/);
  });
});
