import { describe, expect, it } from 'vitest';
import { OutputNeutraliser } from '../../../src/cli/attach.js';
import { confirmLaunch, requireConfirmable } from '../../../src/cli/confirm.js';
import type { CliIO } from '../../../src/shared/io.js';
import { UsageError } from '../../../src/shared/errors.js';
import { fakePlan } from '../../support/fake-plan.js';

function capture(isTTY: boolean): CliIO & { err: string[] } {
  const err: string[] = [];
  return { stdout: () => undefined, stderr: (s) => err.push(s), isTTY, err };
}

describe('confirm before launch', () => {
  it('refuses without a terminal and without --yes (exit 2, says to pass --yes)', () => {
    expect(() => requireConfirmable(false, { isTTY: false }, 'start')).toThrow(UsageError);
    expect(() => requireConfirmable(false, { isTTY: false }, 'resume')).toThrow(/pass --yes/);
    expect(() => requireConfirmable(true, { isTTY: false }, 'start')).not.toThrow();
    expect(() => requireConfirmable(false, { isTTY: true }, 'start')).not.toThrow();
  });

  it('shows the plan and launches only on y or yes', async () => {
    const plan = fakePlan('demo-abcde');
    const answers = [
      ['y', true],
      ['YES', true],
      [' y ', true],
      ['', false],
      ['n', false],
      ['no', false],
      ['maybe', false],
    ] as const;
    for (const [answer, launch] of answers) {
      const io = capture(true);
      const questions: string[] = [];
      const ok = await confirmLaunch(plan, false, io, async (q) => (questions.push(q), answer));
      expect(ok, answer).toBe(launch);
      expect(questions).toEqual(['Launch? [y/N] ']);
      expect(io.err[0]).toContain('identity:     demo-abcde');
      if (!launch) expect(io.err.at(-1)).toContain('not launched');
    }
  });

  it('--yes asks nothing', async () => {
    const io = capture(true);
    expect(await confirmLaunch(fakePlan('demo-abcde'), true, io, async () => expect.fail('asked'))).toBe(true);
    expect(io.err).toEqual([]);
  });
});

describe("the agent's output off a terminal", () => {
  const run = (...chunks: Array<string | Buffer>) => {
    const n = new OutputNeutraliser();
    return chunks.map((c) => n.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'utf8'))).join('') + n.flush();
  };

  it('drops colour, cursor and title sequences and turns CRLF into line ends', () => {
    expect(run('\x1b[1;31mred\x1b[0m text\r\n\x1b]0;title\x07next\r\n')).toBe('red text\nnext\n');
    expect(run('\x1b[2J\x1b[Hcleared\x1b[?25l')).toBe('cleared');
  });

  it('spells out any other control character', () => {
    expect(run('bell\x07 back\x08 nul\x00 c1\u009b end')).toBe('bell\\x07 back\\x08 nul\\x00 c1\\x9b end');
    expect(run('lone \x1b')).toBe('lone \\x1b');
  });

  it('handles a sequence, a CRLF or a UTF-8 character split between chunks', () => {
    expect(run('a\x1b[3', '1mb', '\r', '\nc')).toBe('ab\nc');
    const snow = Buffer.from('☃', 'utf8');
    expect(run(Buffer.from('x'), snow.subarray(0, 1), snow.subarray(1), Buffer.from('y'))).toBe('x☃y');
  });

  it('never holds back an unfinished sequence forever', () => {
    const n = new OutputNeutraliser();
    const out = n.push(Buffer.from(`\x1b]${'t'.repeat(5000)}`));
    expect(out.startsWith('\\x1b]ttt')).toBe(true);
  });
});
