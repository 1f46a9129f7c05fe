import { describe, expect, it } from 'vitest';
import { describeEvent, eventJsonLine } from '../../src/cli/render-event.js';
import { parseEvent } from '../../src/events/schema.js';
import { terminalSafeJson, visibleLines, visibleText, visibleOutput } from '../../src/shared/visible-text.js';

/** Any byte a terminal acts on instead of drawing: C0, DEL, C1. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const requested = (data: Record<string, unknown>) =>
  parseEvent({
    seq: 7,
    type: 'capability.requested',
    at: '2026-11-30T10:00:00.000Z',
    v: 2,
    data: { request_id: 'cap-1', queue_if_pending: true, ...data },
  });

describe('visibleText', () => {
  it('spells out C0, DEL, C1 and bidirectional overrides, and leaves ordinary text alone', () => {
    expect(visibleText('a\u001b[2Jb\rc\nd\te\u007ff\u009bg\u202eh')).toBe('a\\x1b[2Jb\\rc\\nd\\te\\x7ff\\x9bg\\u202eh');
    expect(visibleText('pip install — ünïcode ✓')).toBe('pip install — ünïcode ✓');
  });

  it('never lets a control character through, whatever the input', () => {
    let all = '';
    for (let c = 0; c < 0x250; c++) all += String.fromCharCode(c);
    expect(visibleText(all)).not.toMatch(CONTROL);
  });

  it('keeps line breaks of a multi-line text as lines and spells out a lone CR', () => {
    expect(visibleLines('FROM x\r\nRUN a\rRUN b\n')).toEqual(['FROM x', 'RUN a\\rRUN b', '']);
  });

  it('keeps JSON valid and equal to the input while spelling out what JSON.stringify leaves raw', () => {
    const value = { reason: 'x\u007f\u009b[31m\u202e\u001b' };
    const line = terminalSafeJson(value);
    expect(line).not.toMatch(CONTROL);
    expect(JSON.parse(line)).toEqual(value);
  });
});

describe('event lines', () => {
  const spoof = 'need pip\u001b[2K\r\u001b[1Aegress pypi.org:443 — need pip\u009b31m';

  it('show a capability reason and host with their escapes visible', () => {
    const line = describeEvent(
      requested({ kind: 'egress', host: 'evil\u001b]0;x\u0007.test', port: 443, reason: spoof }),
      'dev-a1b2c',
    );
    expect(line).not.toMatch(CONTROL);
    expect(line).toContain('\\x1b[2K\\r\\x1b[1Aegress pypi.org:443');
    expect(line).toContain('evil\\x1b]0;x\\x07.test');
  });

  it('show agent-caused errors and exit details with their escapes visible', () => {
    const failed = parseEvent({
      seq: 9,
      type: 'bottle.failed',
      at: '2026-11-30T10:00:00.000Z',
      v: 1,
      data: { effect: 'build_image', error: 'step failed\u001b[8m hidden' },
    });
    expect(describeEvent(failed, 'dev-a1b2c')).toBe('bottle failed in build_image: step failed\\x1b[8m hidden');
  });

  it('as JSON lines carry no raw control character and parse back to the same event data', () => {
    const ev = requested({ kind: 'egress', host: 'a.test', port: 443, reason: spoof });
    const line = eventJsonLine(ev);
    expect(line).not.toMatch(CONTROL);
    expect(JSON.parse(line).data.reason).toBe(spoof);
  });
});

describe('agent output shown off a terminal', () => {
  it('keeps line breaks and tabs, spells out ESC and the bidirectional overrides', () => {
    expect(visibleOutput('a\tb\nc\u001b[2Kd\u202ee\n')).toBe('a\tb\nc\\x1b[2Kd\\u202ee\n');
  });
});
