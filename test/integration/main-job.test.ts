import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { show } from '../support/workers.js';

/**
 * The README's main job (scripts/main.sh) runs the demo agent of
 * examples/claude-bottle.json from this repository. The repository holds the
 * manifest, so it can never be the agent's working folder: the job gives the
 * bottle a fresh folder with --cwd, as here.
 */

let h: BottleHarness;
const work = mkdtempSync(join(tmpdir(), 'claude-bottle-main-'));
const manifest = join(REPO, 'examples', 'claude-bottle.json');

beforeAll(async () => {
  h = await startHarness();
}, 120_000);

afterAll(async () => {
  await h?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('the main job', () => {
  it('runs the demo agent in a working folder of its own, to a clean exit', async () => {
    const run = await h.cli(['--manifest', manifest, 'start', '--cwd', work, 'demo']);
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain('claude-bottle demo agent');
    // The demo exits 0 whatever it finds; a sandbox check that failed is marked ✘.
    expect(run.stdout).toContain('✔');
    expect(run.stdout).not.toContain('✘');
    expect(run.stdout).toContain(`cwd ${work}`);
    expect(run.stderr).toContain('cleaned up');
  }, 240_000);

  it('is refused the repository itself, which holds the manifest', async () => {
    const run = await h.cli(['--manifest', manifest, 'start', 'demo'], { cwd: REPO });
    expect(run.code, show(run)).toBe(2);
    expect(run.stderr).toContain(`refusing to give the agent ${REPO}: it holds the manifest ${manifest}`);
  }, 60_000);
});
