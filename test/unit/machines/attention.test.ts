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

  it('reads facts other parts of the machine add by name: a canary alarm outranks everything', () => {
    const state = running(attention(1, 'permission', 'Bash'));
    const alarmed = { ...state, context: { ...state.context, alarm: { message: 'canary key used', seq: 9 } } };
    expect(attentionOf(alarmed)).toEqual({ kind: 'alarm', message: 'canary key used', seq: 9 });
    const budget = { ...state, context: { ...state.context, budgetAttention: { message: '80 % of 1 USD' } } };
    expect(attentionOf(budget)).toMatchObject({ kind: 'budget' });
    const malformed = { ...state, context: { ...state.context, alarm: 'yes' } };
    expect(attentionOf(malformed)).toMatchObject({ kind: 'permission' });
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
