/**
 * bin/bottle.js runs the bundle through V8's code cache, one file per command
 * under dist/cli-bundle/code-cache/. `CLAUDE_BOTTLE_TRACE=1` says whether a run
 * had a usable cache. Uses `list` against this test's own Redis.
 */
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startHarness, type BottleHarness } from '../support/cli-harness.js';

const CACHE_DIR = join(REPO, 'dist', 'cli-bundle', 'code-cache');
const LIST_CACHE = join(CACHE_DIR, 'list.bin');
const NO_CACHE = 'bundle loaded (no usable code cache)';

let h: BottleHarness;
beforeAll(async () => {
  h = await startHarness({ env: { CLAUDE_BOTTLE_TRACE: '1' } });
});
afterAll(async () => {
  await h?.cleanup();
});

describe('the CLI code cache', () => {
  it('is written by the first successful run of a command and used by the next', async () => {
    rmSync(LIST_CACHE, { force: true });
    const first = await h.cli(['list', '--format', 'json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(NO_CACHE);
    expect(existsSync(LIST_CACHE)).toBe(true);

    const second = await h.cli(['list', '--format', 'json']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/bundle loaded\n/);
    expect(second.stderr).not.toContain(NO_CACHE);
    expect(second.stdout).toBe(first.stdout);
  });

  it('is rewritten when V8 rejects it, and the command works all the same', async () => {
    writeFileSync(LIST_CACHE, 'not a code cache');
    const run = await h.cli(['list', '--format', 'json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([]);
    expect(run.stderr).toContain(NO_CACHE);
    expect(statSync(LIST_CACHE).size).toBeGreaterThan(10_000);
  });

  it('is not written by a run that fails (a mistyped command leaves nothing behind)', async () => {
    const typo = await h.cli(['lisst']);
    expect(typo.code).toBe(2);
    expect(existsSync(join(CACHE_DIR, 'lisst.bin'))).toBe(false);
  });
});
