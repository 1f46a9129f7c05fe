import { describe, expect, it } from 'vitest';
import { attentionCell, needsYouFirst } from '../../../src/cli/attention-line.js';
import { attentionEnv } from '../../../src/cli/commands/notify.js';
import { waitReason } from '../../../src/cli/commands/wait.js';
import { foldHistory } from '../../../src/machines/index.js';
import { history, launchSteps } from '../../golden/fixtures.js';

describe('needsYouFirst', () => {
  it('lists bottles that need you first, the most urgent kind first, the rest in their order', () => {
    const rows = [
      { id: 'a', attention: null },
      { id: 'b', attention: { kind: 'idle', message: '' } },
      { id: 'c', attention: null },
      { id: 'd', attention: { kind: 'permission', message: '' } },
      { id: 'e', attention: { kind: 'idle', message: '' } },
    ] as const;
    expect(needsYouFirst(rows, (r) => r.attention).map((r) => r.id)).toEqual(['d', 'b', 'e', 'a', 'c']);
  });
});

describe('attentionCell', () => {
  it('shows the kind and the start of the message, its control characters spelled out', () => {
    expect(attentionCell(undefined)).toBe('-');
    expect(attentionCell({ kind: 'question', message: 'ok\u001b[2J\u202e?' })).toBe('question: ok\\x1b[2J\\u202e?');
    const cell = attentionCell({ kind: 'permission', message: 'x'.repeat(100) });
    expect(Array.from(cell)).toHaveLength('permission: '.length + 40);
  });
});

describe('attentionEnv (bottle notify)', () => {
  it('hands identity, kind and the defanged message to the command as variables', () => {
    const env = attentionEnv({
      identity: 'dev-a1b2c',
      attention: { kind: 'permission', message: 'rm -rf $(pwd)\u001b]0;x\u0007\r\n`id`', seq: 3 },
    });
    expect(env).toEqual({
      BOTTLE_IDENTITY: 'dev-a1b2c',
      BOTTLE_ATTENTION_KIND: 'permission',
      BOTTLE_ATTENTION_MESSAGE: 'rm -rf $(pwd)\\x1b]0;x\\x07\\r\\n`id`',
    });
  });
});

describe('waitReason (bottle wait)', () => {
  const ID = 'dev-a1b2c';
  it('names the attention, the running state or the exit', () => {
    const runningState = foldHistory(ID, history(launchSteps(ID))).state;
    expect(waitReason(runningState, 'running')).toBe('running');
    expect(waitReason(runningState, 'attention')).toBeUndefined();
    const asked = foldHistory(
      ID,
      history([...launchSteps(ID), ['agent.attention', { n: 1, kind: 'question', message: 'which?' }]]),
    ).state;
    expect(waitReason(asked, 'attention')).toBe('attention question: which?');
    const exited = foldHistory(ID, history([...launchSteps(ID), ['agent.exited', { code: 3, signal: null }]])).state;
    expect(waitReason(exited, 'exit')).toMatch(/^exited code 3/);
    expect(waitReason(exited, 'running')).toBeUndefined();
  });
});
