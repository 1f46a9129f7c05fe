import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stampEvents } from '../../src/event-store/log.js';
import { foldEvents, initialBottleState } from '../../src/machines/index.js';
import { PIN_DEFAULT_HOSTS, REPO, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { fakePlan } from '../support/fake-plan.js';

/**
 * `start` and `resume` refuse (exit 2, one line that suggests a project
 * folder) a working folder the agent must not be able to write: here, the
 * folder that holds the manifest, reached through a symlink, $HOME, the
 * installation this command runs from, a system folder and a folder on the
 * operator's PATH. They refuse before anything is made: the state folder tree and the Redis key
 * space are the same before and after.
 */

let h: BottleHarness;
let manifest: string;
let redis: Redis;
let scratch: string;

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'demo', bottle: 'box', command: ['sleep', '600'] }],
  });
  redis = h.redis.connect();
  scratch = mkdtempSync(join(tmpdir(), 'cb-workdir-'));
});
afterAll(async () => {
  redis?.disconnect();
  await h?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const s = lstatSync(p);
      out.push(`${p.slice(root.length)} ${s.isDirectory() ? 'dir' : s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

async function refusedWithoutTrace(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<string> {
  const before = { home: tree(h.home), keys: (await redis.keys('*')).sort() };
  const result = await h.cli(['--manifest', manifest, ...args], { env, timeoutMs: 60_000, cwd });
  expect(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/run it from a project folder \(cd into one, or pass --cwd DIR\)$/);
  expect(result.stdout).toBe('');
  expect(tree(h.home)).toEqual(before.home);
  expect((await redis.keys('*')).sort()).toEqual(before.keys);
  expect(await h.docker.listContainers({ all: true, filters: JSON.stringify({ name: ['cb-demo-'] }) })).toEqual([]);
  return lines[0];
}

describe('the working folder guard', () => {
  it('refuses the folder holding the manifest, compared by real path (a symlink to it too)', async () => {
    const link = join(scratch, 'looks-like-a-project');
    symlinkSync(dirname(manifest), link);
    const line = await refusedWithoutTrace(['start', 'demo', '--detach', '--cwd', link]);
    expect(line).toContain(`it holds the manifest ${manifest}`);
  });

  it('started from the installation folder is refused at start, and by the dry run', async () => {
    // The audit's reproduction: from there the agent rewrote dist/cli-bundle/bottle.cjs, which the host runs next.
    const line = await refusedWithoutTrace(['start', 'demo', '--detach'], {}, REPO);
    expect(line).toMatch(
      /^bottle: refusing to give the agent \S+: it is the claude-bottle installation this command runs from,/,
    );
    const dryRun = await refusedWithoutTrace(['start', 'demo', '--dry-run', '--cwd', `${REPO}/dist/cli-bundle`]);
    expect(dryRun).toMatch(/it is inside the claude-bottle installation this command runs from /);
  });

  it('refuses a system folder and a folder on the PATH', async () => {
    const line = await refusedWithoutTrace(['start', 'demo', '--detach', '--cwd', '/var/lib']);
    expect(line).toMatch(/it is inside the system folder \/var,/);
    const bin = join(scratch, 'bin');
    mkdirSync(bin);
    const onPath = await refusedWithoutTrace(['start', 'demo', '--detach', '--cwd', scratch], {
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(onPath).toContain(`it holds a folder on your PATH ${bin}`);
  });

  it('refuses $HOME, also for --copy-cwd', async () => {
    const home = join(scratch, 'home');
    mkdirSync(home);
    const line = await refusedWithoutTrace(['start', 'demo', '--detach', '--copy-cwd', '--cwd', home], { HOME: home });
    expect(line).toMatch(/it is your home folder/);
  });

  it('refuses the state folder (CLAUDE_BOTTLE_HOME) on resume as well', async () => {
    const identity = 'demo-r3sm3';
    // A bottle whose launch failed, as its log records it: resume takes its working folder from the plan.
    const plan = fakePlan(identity, { bottle: 'box', cwd: h.home, manifest_path: manifest });
    const failure = { effect: 'prepare_state', error: 'disk full' };
    const events = stampEvents(
      0,
      [
        { type: 'bottle.start_requested', data: { plan } },
        { type: 'effect.failed', data: { ...failure, attempt: 1, permanent: true } },
        { type: 'bottle.failed', data: failure },
      ],
      new Date(0).toISOString(),
    );
    await h.log.append(identity, 0, events, foldEvents(initialBottleState(identity), events));
    const line = await refusedWithoutTrace(['resume', identity, '--detach']);
    expect(line).toMatch(/it is the claude-bottle state folder/);
  });
});
