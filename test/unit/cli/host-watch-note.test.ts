import { describe, expect, it } from 'vitest';
import { unservedNote } from '../../../src/cli/host-watch.js';

describe('the note for a host no live worker serves', () => {
  it('names the host and the command that starts a worker for it, for each kind of command', () => {
    const run = '`bottle worker --host gpu-1` on that host';
    expect(unservedNote('gpu-1', { detach: false })).toBe(
      `no live worker serves host gpu-1; waiting; it carries on when one does: ${run}`,
    );
    expect(unservedNote('gpu-1', { detach: true })).toBe(
      `no live worker serves host gpu-1; not waiting (--detach); start one with ${run}`,
    );
    expect(unservedNote('gpu-1', { detach: false, following: true })).toBe(
      `no live worker serves host gpu-1; still following, but nothing moves the bottle on until one runs: ${run}`,
    );
  });

  it('asks for any worker before the bottle has a host', () => {
    expect(unservedNote(undefined, { detach: false, following: true })).toMatch(
      /^no live worker takes commands; .*`bottle worker`$/,
    );
  });

  it('spells out control characters in a host id read from Redis', () => {
    const note = unservedNote('evil\x1b[2J\rhost', { detach: false, following: true });
    expect(note).not.toMatch(/[\x00-\x1f]/);
    expect(note).toContain('evil\\x1b[2J\\rhost');
  });
});
