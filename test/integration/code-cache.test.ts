/**
 * bin/bottle.js runs the bundle of short-lived commands through V8's code cache, one file per
 * command under dist/cli-bundle/code-cache/; long-running ones (worker, dashboard) load it with a
 * plain require(), without the cache and the V8 flag it needs. `CLAUDE_BOTTLE_TRACE=1` says how a
 * run loaded the bundle. Uses this test's own Redis.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOTTLE_BIN, REPO, startHarness, type BottleHarness } from '../support/cli-harness.js';

const CACHE_DIR = join(REPO, 'dist', 'cli-bundle', 'code-cache');
const LIST_CACHE = join(CACHE_DIR, 'list.bin');
const NO_CACHE = 'bundle loaded (no usable code cache)';
const BY_REQUIRE = 'bundle loaded by require (no code cache)';
const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;

let h: BottleHarness;
beforeAll(async () => {
  h = await startHarness({ env: { CLAUDE_BOTTLE_TRACE: '1' } });
});
afterAll(async () => {
  await h?.cleanup();
});

/** Resolves once `pattern` appears in `read()`, checking every 100 ms. */
async function waitFor(read: () => string, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms; output so far:\n${read()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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

  it('is not used by `bottle worker`, which keeps V8 defaults for its whole life', async () => {
    const workerCache = join(CACHE_DIR, 'worker.bin');
    rmSync(workerCache, { force: true });
    const worker = spawn(process.execPath, [BOTTLE_BIN, 'worker'], {
      cwd: REPO,
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    worker.stdout.on('data', (b: Buffer) => (output += b.toString()));
    worker.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((resolve) => worker.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => output, /worker ready/, 60_000);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(existsSync(workerCache)).toBe(false);
    expect(output).toContain(BY_REQUIRE);
    expect(output).not.toMatch(/Warning/);
  });
});

describe('Node warnings', () => {
  it('are printed by no short-lived command', async () => {
    const dryRun = ['--manifest', join(REPO, 'examples', 'claude-bottle.json'), 'start', 'demo', '--dry-run'];
    for (const args of [['--version'], ['list', '--all'], ['doctor'], dryRun]) {
      const run = await h.cli(args);
      expect(run.stderr, args.join(' ')).not.toMatch(/Warning/);
    }
  });

  it.skipIf(!hasScript)('are not printed by the dashboard, which imports ES modules (ink, its view)', async () => {
    // The dashboard needs a terminal: script(1) gives it one; its stderr goes to a file to be read apart.
    const dir = mkdtempSync(join(tmpdir(), 'cb-dashboard-'));
    const stderrFile = join(dir, 'stderr');
    try {
      const command = `exec "${process.execPath}" "${BOTTLE_BIN}" dashboard 2>"${stderrFile}"`;
      const dashboard = spawn('script', ['-qec', command, '/dev/null'], {
        cwd: REPO,
        env: { ...h.env, TERM: 'xterm' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      dashboard.stdout.on('data', (b: Buffer) => (screen += b.toString()));
      const exited = new Promise<number | null>((resolve) => dashboard.on('close', (code) => resolve(code)));
      const stuck = setTimeout(() => dashboard.kill('SIGKILL'), 120_000);
      exited.finally(() => clearTimeout(stuck));
      const stderr = () => (existsSync(stderrFile) ? readFileSync(stderrFile, 'utf8') : '');
      await waitFor(stderr, /bundle loaded/, 60_000);
      // `q` quits once ink reads the keyboard; until then the terminal holds it back, so keep pressing.
      const quit = setInterval(() => dashboard.stdin.write('q'), 500);
      const code = await exited.finally(() => clearInterval(quit));
      expect(code, `${stderr()}\n${screen}`).toBe(0);
      expect(stderr()).not.toMatch(/Warning/);
      expect(screen).not.toMatch(/Warning/);
      expect(stderr()).toContain(BY_REQUIRE);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
