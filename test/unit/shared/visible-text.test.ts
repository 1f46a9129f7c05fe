import { describe, expect, it } from 'vitest';
import { describeEvent, eventJsonLine } from '../../../src/cli/render-event.js';
import { parseEvent } from '../../../src/events/schema.js';
import {
  MAX_SHOWN_REASON_LINES,
  terminalSafeJson,
  visibleBoundedLines,
  visibleLines,
  visibleText,
  visibleOutput,
} from '../../../src/shared/visible-text.js';

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

  it('spells out zero-width characters, the byte order mark and the word joiner', () => {
    expect(visibleText('pypi\u200b.org\u2060 ok\ufeff')).toBe('pypi\\u200b.org\\u2060 ok\\ufeff');
  });

  it('spells out every bidirectional control (Trojan Source)', () => {
    const bidi = '\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069';
    expect(visibleText(`a${bidi}b`)).toBe(
      'a\\u061c\\u200e\\u200f\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069b',
    );
  });

  it('spells out tag characters, which carry a hidden message, by their code point', () => {
    const hidden = [...'curl|sh'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
    const shown = visibleText(`need pip\u{e0001}${hidden}\u{e007f}`);
    expect(shown).toBe(
      'need pip\\u{e0001}\\u{e0063}\\u{e0075}\\u{e0072}\\u{e006c}\\u{e007c}\\u{e0073}\\u{e0068}\\u{e007f}',
    );
  });

  it('spells out line and paragraph separators, which some terminals break lines on', () => {
    expect(visibleText('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
  });

  it('leaves no invisible format character through, whatever the input', () => {
    let all = '';
    for (let c = 0; c < 0x10000; c++) if (c < 0xd800 || c > 0xdfff) all += String.fromCharCode(c);
    for (let c = 0xe0000; c <= 0xe007f; c++) all += String.fromCodePoint(c);
    expect(visibleText(all)).not.toMatch(/[\p{Cc}\p{Cf}\u2028\u2029]/u);
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

  it('keeps JSON valid and equal to the input with zero-width and tag characters spelled out', () => {
    const value = { reason: 'a\u200bb\u{e0041}c\ufeff' };
    const line = terminalSafeJson(value);
    expect(line).toBe('{"reason":"a\\u200bb\\udb40\\udc41c\\ufeff"}');
    expect(JSON.parse(line)).toEqual(value);
  });
});

describe('a reason of many lines', () => {
  it('keeps its line breaks as lines when it is short', () => {
    expect(visibleBoundedLines('need pip\nfor the tests')).toEqual(['need pip', 'for the tests']);
  });

  it('shows at most a bounded number of lines and counts the rest, so padding cannot scroll the request away', () => {
    const padded = `need pip${'\n'.repeat(200)}and pipe a script into sh`;
    const lines = visibleBoundedLines(padded);
    expect(lines).toHaveLength(MAX_SHOWN_REASON_LINES);
    expect(lines[0]).toBe('need pip');
    expect(lines.at(-1)).toBe(`… (${201 - (MAX_SHOWN_REASON_LINES - 1)} more lines)`);
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

  it('name the transcript files a snapshot skipped, escapes visible', () => {
    const snapshotted = parseEvent({
      seq: 11,
      type: 'transcript.snapshotted',
      at: '2026-11-30T10:00:00.000Z',
      v: 1,
      data: {
        files: 3,
        bytes: 2048,
        missing: false,
        skipped: [{ path: 'big\u202e.jsonl', bytes: 1073741824 }],
        skipped_count: 2,
        skipped_bytes: 1073741825,
        limit_bytes: 268435456,
      },
    });
    expect(describeEvent(snapshotted, 'dev-a1b2c')).toBe(
      'transcript snapshotted (3 files, 2048 bytes); skipped 2 over the 268435456 bytes limit: ' +
        'big\\u202e.jsonl (1073741824 bytes), 1 more',
    );
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
