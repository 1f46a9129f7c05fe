import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDryRun } from '../../src/cli/commands/dry-run.js';
import { dockerClient } from '../../src/effects/docker/client.js';
import { repoRoot } from '../../src/images/build-context.js';
import { DEFAULT_HOSTS } from '../../src/plan/default-hosts.js';
import { BottlePlanSchema, type BottlePlan } from '../../src/plan/schema.js';
import { LABELS } from '../../src/shared/names.js';
import { writeManifestDir, type ManifestDir } from '../support/manifest-fixtures.js';

const docker = dockerClient();
const suffix = randomBytes(4).toString('hex');
const TOKEN_ENV = `CB_DRYRUN_TOKEN_${suffix.toUpperCase()}`;
const GH_ENV = `CB_DRYRUN_GH_${suffix.toUpperCase()}`;
const SECRET = `sk-secret-${randomBytes(12).toString('hex')}`;
const GH_SECRET = `ghp_${randomBytes(12).toString('hex')}`;
let manifest: ManifestDir;
let cwd: string;

beforeAll(async () => {
  process.env[TOKEN_ENV] = SECRET;
  process.env[GH_ENV] = GH_SECRET;
  cwd = await mkdtemp(join(tmpdir(), 'cb-dryrun-cwd-'));
  manifest = await writeManifestDir(
    () => ({
      bottles: [
        {
          name: 'dev',
          egress: {
            allow: [
              'github.com',
              'GitHub.com',
              'api.anthropic.com',
              '*.githubusercontent.com',
              'registry.npmjs.org:443',
            ],
          },
          cred_proxy: {
            routes: [
              {
                role: 'anthropic-base-url',
                upstream: 'https://api.anthropic.com',
                token_env: TOKEN_ENV,
                auth: 'oauth',
              },
              { host: 'api.github.com', token_env: GH_ENV, auth: 'bearer' },
            ],
          },
          ssh: [{ Host: 'github.com', IdentityFile: './keys/id_ed25519' }],
          limits: { memory: '2g', cpus: 1, pids: 512 },
        },
      ],
      agents: [{ name: 'implementer', bottle: 'dev', prompt: './prompts/implementer.md', skills: ['./skills/tdd'] }],
    }),
    {
      'keys/id_ed25519': 'fake key material\n',
      'prompts/implementer.md': 'You implement.\n',
      'skills/tdd/SKILL.md': '---\nname: tdd\n---\n',
    },
  );
});

afterAll(async () => {
  delete process.env[TOKEN_ENV];
  delete process.env[GH_ENV];
  await manifest?.cleanup();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

async function dockerResourcesOf(identity: string) {
  const filters = { label: [`${LABELS.identity}=${identity}`] };
  const [containers, networks] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
  ]);
  const byName = await docker.listNetworks({ filters: { name: [`cb-${identity}-`] } });
  return [...containers, ...networks, ...byName];
}

function assertPlan(plan: BottlePlan, output: string) {
  expect(plan.agent).toBe('implementer');
  expect(plan.bottle).toBe('dev');
  expect(plan.identity).toMatch(/^implementer-[0-9a-z]{5}$/);
  expect(plan.runtime).toBe('runsc');
  expect(plan.image).toMatchObject({ builtin: true, dockerfile: 'builtin:agent' });
  expect(plan.image.tag).toMatch(/^claude-bottle\/agent:[0-9a-f]{16}$/);
  expect(plan.gateway_image.tag).toMatch(/^claude-bottle\/gateway:[0-9a-f]{16}$/);
  expect(plan.hosts).toEqual([...new Set(plan.hosts)].sort());
  expect(plan.hosts.filter((h) => h === 'github.com')).toHaveLength(1);
  expect(plan.hosts).toEqual(
    expect.arrayContaining(['github.com', '*.githubusercontent.com', 'registry.npmjs.org:443', ...DEFAULT_HOSTS]),
  );
  expect(plan.networks).toEqual({ internal: `cb-${plan.identity}-internal`, egress: `cb-${plan.identity}-egress` });
  // The ssh key is not among them: the gateway holds it.
  expect(plan.mounts.map((m) => m.purpose)).toEqual(['cwd', 'prompt', 'skill']);
  expect(plan.mounts[0]).toMatchObject({ kind: 'bind', source: cwd, target: cwd });
  expect(plan.env_names).toEqual(
    expect.arrayContaining(['ANTHROPIC_BASE_URL', 'CLAUDE_CODE_OAUTH_TOKEN', 'HTTPS_PROXY']),
  );
  expect(plan.env_names).not.toContain(TOKEN_ENV);
  expect(plan.credentials).toEqual([
    {
      role: 'anthropic-base-url',
      upstream: 'https://api.anthropic.com',
      auth: 'oauth',
      token_source: `env:${TOKEN_ENV}`,
    },
    { host: 'api.github.com', upstream: 'https://api.github.com', auth: 'bearer', token_source: `env:${GH_ENV}` },
  ]);
  expect(plan.ssh).toEqual([{ Host: 'github.com', IdentityFile: join(manifest.dir, 'keys/id_ed25519') }]);
  expect(plan.env_names).toContain('SSH_AUTH_SOCK');
  expect(plan.skills).toEqual([{ name: 'tdd', source: join(manifest.dir, 'skills/tdd') }]);
  expect(plan.cwd).toBe(cwd);
  expect(plan.copy_cwd).toBe(false);
  expect(plan.command).toEqual([
    'claude',
    '--append-system-prompt-file',
    '/home/node/.claude-bottle/prompt.md',
    '-p',
    'say hi',
  ]);
  expect(plan.limits).toMatchObject({ memory: '2g', cpus: 1, pids: 512 });
  expect(output).not.toContain(SECRET);
  expect(output).not.toContain(GH_SECRET);
}

describe('runDryRun', () => {
  it('prints the resolved plan as JSON without secrets and creates no Docker resource', async () => {
    let output = '';
    const code = await runDryRun(
      {
        manifestPath: manifest.path,
        agent: 'implementer',
        cwd,
        copyCwd: false,
        format: 'json',
        args: ['-p', 'say hi'],
      },
      { stdout: (s) => (output += s), stderr: () => {} },
    );
    expect(code).toBe(0);
    const plan = BottlePlanSchema.parse(JSON.parse(output));
    assertPlan(plan, output);
    expect(await dockerResourcesOf(plan.identity)).toEqual([]);
  });

  it('prints a readable summary in text format', async () => {
    let output = '';
    await runDryRun(
      { manifestPath: manifest.path, agent: 'implementer', cwd, copyCwd: true, format: 'text', args: [] },
      { stdout: (s) => (output += s), stderr: () => {} },
    );
    expect(output).toMatch(/^runtime: +runsc \(gVisor\)$/m);
    expect(output).toMatch(new RegExp(`^cwd: +${cwd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(copied in\\)$`, 'm'));
    expect(output).toMatch(/^hosts: +\d+ allowed$/m);
    expect(output).not.toContain(SECRET);
  });

  it('rejects an unknown agent with the known ones listed', async () => {
    await expect(
      runDryRun(
        { manifestPath: manifest.path, agent: 'reviewer', cwd, copyCwd: false, format: 'json', args: [] },
        { stdout: () => {}, stderr: () => {} },
      ),
    ).rejects.toThrow(/no agent named "reviewer".*known agents: implementer/);
  });
});

// The built CLI (npm run build); CLAUDE_BOTTLE_TEST_CLI points at another build's bin/bottle.js.
const cliBin = process.env.CLAUDE_BOTTLE_TEST_CLI ?? join(repoRoot(), 'bin', 'bottle.js');
const cliBuilt = existsSync(join(dirname(cliBin), '..', 'dist', 'cli', 'commands', 'dry-run.js'));

describe.skipIf(!cliBuilt)('bottle start --dry-run --format json (built CLI)', () => {
  it('prints the same plan from a child process and exits 0', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        cliBin,
        '--manifest',
        manifest.path,
        'start',
        'implementer',
        '--cwd',
        cwd,
        '--dry-run',
        '--format',
        'json',
        '--',
        '-p',
        'say hi',
      ],
      { env: { ...process.env }, timeout: 120_000 },
    );
    expect(stderr).not.toContain(SECRET);
    const plan = BottlePlanSchema.parse(JSON.parse(stdout));
    assertPlan(plan, stdout);
    expect(await dockerResourcesOf(plan.identity)).toEqual([]);
  });
});

describe.skipIf(!cliBuilt)('a dry run writes nothing', () => {
  it('leaves a fresh CLAUDE_BOTTLE_HOME empty (no digest cache, no state, no worker)', async () => {
    const home = await mkdtemp(join(tmpdir(), 'cb-dryrun-home-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [cliBin, '--manifest', manifest.path, 'start', 'implementer', '--cwd', cwd, '--dry-run'],
        { env: { ...process.env, CLAUDE_BOTTLE_HOME: home }, timeout: 120_000 },
      );
      expect(stdout).toMatch(/^runtime: /m);
      expect(await readdir(home)).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("says which image can't be planned yet instead of failing", async () => {
    let output = '';
    let notes = '';
    const code = await runDryRun(
      { manifestPath: manifest.path, agent: 'implementer', cwd, copyCwd: false, format: 'text', args: [] },
      { stdout: (s) => (output += s), stderr: (s) => (notes += s) },
      {
        gatewaySource: () => {
          throw new Error(
            "the gateway's Node binary is missing at /nonexistent/node: run `bash scripts/fetch-gateway-node.sh`",
          );
        },
      },
    );
    expect(code).toBe(0);
    expect(output).toMatch(/^gateway: +claude-bottle\/gateway:unplanned$/m);
    expect(notes).toMatch(/the gateway image can't be planned yet: .*fetch-gateway-node\.sh/);
  });
});
