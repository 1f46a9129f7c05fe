import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { gatewayNodeCandidates } from '../../src/images/gateway-node.js';
import { REPO } from '../support/cli-harness.js';
import { show } from '../support/workers.js';

/**
 * The package as a user gets it: `npm pack` (its prepack builds dist/), `npm install -g` of the tarball
 * into a fresh prefix, and the installed `bottle` run from a folder outside the repository with a
 * manifest in a temporary home: --version, doctor, a dry run, and a real demo bottle on the embedded
 * default, start to end.
 */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const root = mkdtempSync(join(tmpdir(), 'cb-package-'));
const prefix = join(root, 'prefix');
const home = join(root, 'home');
const work = join(root, 'work');
const stateHome = join(home, '.claude-bottle');
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const installed = join(prefix, 'lib', 'node_modules', 'claude-bottle');
let tarball: string;
const started: string[] = [];

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }) {
  return new Promise<Run>((resolveRun) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

/** The installed `bottle`, from the folder outside the repository, knowing nothing of this one's settings. */
function bottle(args: string[], timeoutMs = 120_000): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    CLAUDE_BOTTLE_HOME: stateHome,
    PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`,
  };
  for (const name of ['REDIS_URL', 'CLAUDE_BOTTLE_MANIFEST', 'CLAUDE_BOTTLE_OAUTH_TOKEN', 'ANTHROPIC_API_KEY'])
    delete env[name];
  return run('bottle', args, { cwd: work, env, timeoutMs });
}

beforeAll(async () => {
  for (const dir of [prefix, home, work]) mkdirSync(dir, { recursive: true });
  const packed = await run('npm', ['pack', '--pack-destination', root, '--silent'], { cwd: REPO, timeoutMs: 600_000 });
  expect(packed.code, show(packed)).toBe(0);
  tarball = join(root, packed.stdout.trim().split('\n').at(-1)!);
  const install = await run(
    'npm',
    ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    { cwd: root, timeoutMs: 600_000 },
  );
  expect(install.code, show(install)).toBe(0);
  // The gateway's Node as an installed package keeps it: in the tool's cache under CLAUDE_BOTTLE_HOME,
  // seeded here from this checkout's copy so the test fetches nothing (the fetch itself is the same
  // script the checkout runs).
  const cached = gatewayNodeCandidates({ CLAUDE_BOTTLE_HOME: stateHome });
  mkdirSync(dirname(cached.cache), { recursive: true });
  cpSync(cached.vendor, cached.cache);
  writeFileSync(
    join(home, 'claude-bottle.json'),
    JSON.stringify({
      bottles: [{ name: 'sandbox', egress: { allow: ['deb.debian.org:80'] }, limits: { memory: '1g', cpus: 1 } }],
      agents: [{ name: 'demo', bottle: 'sandbox', command: ['bottle-demo'] }],
    }),
  );
}, 1_200_000);

afterAll(async () => {
  if (existsSync(join(stateHome, 'worker'))) await bottle(['shutdown', '--force']);
  const docker = new Docker();
  for (const identity of started) await removeBottleResources(docker, identity).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
}, 120_000);

describe('the packed package, installed globally', () => {
  it('carries what runs and nothing of the repository besides', async () => {
    const listing = await run('tar', ['-tzf', tarball], { cwd: root });
    const files = listing.stdout.trim().split('\n');
    for (const needed of [
      'package/bin/bottle.js',
      'package/dist/cli-bundle/bottle.cjs',
      'package/dist/cli-bundle/dashboard-view.js',
      'package/dist/gateway/gateway.cjs',
      'package/dist/gateway/netwatch.cjs',
      'package/dist/gateway/port-forwarder.cjs',
      'package/dist/agent-init/wait-for-proxy',
      'package/dist/build-id.txt',
      'package/images/agent/Dockerfile',
      'package/images/gateway/Dockerfile',
      'package/scripts/fetch-gateway-node.sh',
    ])
      expect(files).toContain(needed);
    expect(files.filter((f) => /^package\/(test|bench|src\/cli|vendor|node_modules)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.includes('code-cache'))).toEqual([]);
  });

  it('runs from a folder outside the repository: --version and doctor', async () => {
    const shown = await bottle(['--version']);
    expect(shown.code, show(shown)).toBe(0);
    expect(shown.stdout.trim()).toBe(version);
    const doctor = await bottle(['doctor']);
    expect(doctor.code, show(doctor)).toBe(0);
    expect(doctor.stdout).toMatch(/^ok +backend docker/m);
    expect(doctor.stdout).toContain(`Claude Code binary present (${installed}/`);
  }, 120_000);

  it('plans a start from the manifest in the home folder (dry run), with image sources from the package', async () => {
    const text = await bottle(['start', 'demo', '--dry-run']);
    expect(text.code, show(text)).toBe(0);
    expect(text.stdout).toMatch(/^backend: +docker$/m);
    expect(text.stdout).toMatch(/^image: +claude-bottle\/agent:[0-9a-f]{16} \(built-in\)$/m);
    expect(text.stdout).toContain(`cwd:          ${work} (bind-mounted)`);
    const json = await bottle(['start', 'demo', '--dry-run', '--format', 'json']);
    expect(json.code, show(json)).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      backend: 'docker',
      manifest_path: join(home, 'claude-bottle.json'),
    });
    // Nothing was written into the installed package for the gateway's Node.
    expect(existsSync(join(installed, 'vendor'))).toBe(false);
  }, 120_000);

  it('runs the demo bottle to a clean end on the embedded default', async () => {
    const demo = await bottle(['start', '--yes', 'demo'], 300_000);
    const identity = /bottle (demo-[0-9a-z]{5}): starting/.exec(demo.stderr)?.[1];
    if (identity) started.push(identity);
    expect(demo.code, show(demo)).toBe(0);
    expect(demo.stdout).toContain('claude-bottle demo agent');
    expect(demo.stdout).not.toContain('✘');
    expect(demo.stderr).toContain('starting embedded redis-server');
    expect(demo.stderr).toContain('cleaned up');
  }, 320_000);
});
