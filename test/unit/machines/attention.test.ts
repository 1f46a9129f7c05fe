import { describe, expect, it } from 'vitest';
import { attentionOf, foldHistory, isNewAttention, needsYou, type BottleState } from '../../../src/machines/index.js';
import { history, launchSteps, type Step } from '../../golden/fixtures.js';

const ID = 'dev-a1b2c';
const running = (...more: Step[]): BottleState => foldHistory(ID, history([...launchSteps(ID), ...more])).state;
const attention = (n: number, kind: 'permission' | 'question' | 'idle', message: string): Step => [
  'agent.attention',
  { n, kind, message },
];
const request: Step = [
  'capability.requested',
  { request_id: 'r1', kind: 'egress', host: 'pypi.org', port: 443, reason: 'pip install', queue_if_pending: true },
];

describe('attentionOf', () => {
  it('is nothing for a running bottle whose agent works', () => {
    expect(attentionOf(running())).toBeUndefined();
    expect(needsYou(running(attention(1, 'idle', 'done'), ['agent.working', { n: 2 }]))).toBe(false);
  });

  it('is the agent’s own report while it runs, and the bottle stays running', () => {
    const state = running(attention(1, 'permission', 'Claude needs your permission to use Bash'));
    expect(state.value).toBe('running');
    expect(attentionOf(state)).toMatchObject({
      kind: 'permission',
      message: 'Claude needs your permission to use Bash',
    });
  });

  it('puts a pending capability request before the agent’s own report', () => {
    const state = running(attention(1, 'idle', 'done'), request);
    expect(attentionOf(state)).toMatchObject({ kind: 'request', message: 'egress pypi.org: pip install' });
  });

  it('is nothing once the agent has exited, whatever it said last', () => {
    const state = running(attention(1, 'question', 'which branch?'), ['agent.exited', { code: 0, signal: null }]);
    expect(attentionOf(state)).toBeUndefined();
  });

  it('puts a canary alarm before everything, and a budget past 80 % before requests and reports', () => {
    const state = running(attention(1, 'permission', 'Bash'));
    const alarm = { at: '2026-01-01T00:00:00.000Z', rule: 'aws_access_key_id', fingerprint: 'f', host: 'x.test' };
    const alarmed = { ...state, context: { ...state.context, alarm: { ...alarm, count: 2 } } };
    expect(attentionOf(alarmed)).toMatchObject({
      kind: 'alarm',
      message: 'canary aws_access_key_id sent to x.test (2 times)',
    });
    const standing = { unit: 'tokens', limit: 1000, raised: 0, spent: 850, state: 'warning' } as const;
    const warned = { ...state, context: { ...state.context, budget: standing } };
    expect(attentionOf(warned)).toMatchObject({ kind: 'budget' });
    const spent = {
      ...state,
      context: { ...state.context, budget: { ...standing, spent: 1000, state: 'exhausted' as const } },
    };
    expect(isNewAttention(attentionOf(warned), attentionOf(spent))).toBe(true);
    const fine = { ...state, context: { ...state.context, budget: { ...standing, spent: 10, state: 'ok' as const } } };
    expect(attentionOf(fine)).toMatchObject({ kind: 'permission' });
  });
});

describe('isNewAttention', () => {
  it('is a new kind, or the same kind raised by a later event, never a re-read of the same one', () => {
    const first = { kind: 'idle', message: 'a', seq: 5 } as const;
    expect(isNewAttention(undefined, first)).toBe(true);
    expect(isNewAttention(first, { ...first })).toBe(false);
    expect(isNewAttention(first, { ...first, seq: 9 })).toBe(true);
    expect(isNewAttention(first, { ...first, kind: 'permission' })).toBe(true);
    expect(isNewAttention(first, undefined)).toBe(false);
  });
});
