import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROMPT_TARGET, SKILLS_TARGET_DIR } from '../../src/plan/agent-env.js';
import { BottlePlanSchema } from '../../src/plan/schema.js';
import {
  BOTTLE_BIN,
  PIN_DEFAULT_HOSTS,
  REPO,
  startHarness,
  withYes,
  type BottleHarness,
  type CliResult,
} from '../support/cli-harness.js';
import { hostIsLive, show, until } from '../support/workers.js';

/**
 * What a bottle needs from the CLI's machine (its Dockerfile's build context,
 * the prompt, skills, a copied working folder) reaches the worker as
 * content-addressed blobs through Redis. The worker here runs in a mount
 * namespace of its own (util-linux `unshare`) where the CLI's folder is an
 * empty tmpfs: as on another machine, it can only use what was uploaded.
 */

let h: BottleHarness;
let worker: ChildProcess | undefined;
const hostId = `cb-upload-${randomBytes(3).toString('hex')}`;
const marker = `marker-${randomBytes(6).toString('hex')}`;
let manifest: string;
let cliFolder: string;
const builtImages = new Set<string>();
const cliClaudeDir = mkdtempSync(join(tmpdir(), 'cb-cli-claude-'));
const workerClaudeDir = mkdtempSync(join(tmpdir(), 'cb-worker-claude-'));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return h.cli(args, { env: { CLAUDE_CONFIG_DIR: cliClaudeDir, ...env } });
}

/** Runs `command` in a new mount namespace where `hidden` is an empty tmpfs. */
function spawnHiding(hidden: string, command: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t tmpfs none "$0" && shift && exec "$@"',
      hidden,
      '-',
      ...command,
    ],
    { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

async function blobCount(): Promise<number> {
  const redis = new Redis({ path: h.redis.socket });
  try {
    return (await redis.keys('cb:blob:*')).length;
  } finally {
    redis.disconnect();
  }
}

beforeAll(async () => {
  h = await startHarness();
  const script = [
    'cat /marker.txt',
    `cat ${PROMPT_TARGET}`,
    `cat ${SKILLS_TARGET_DIR}/noting/SKILL.md`,
    'cat data.txt',
    'cat /home/node/.claude.json',
  ];
  manifest = h.writeManifest(
    {
      bottles: [
        { name: 'uploaded', dockerfile: './docker/Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
      ],
      agents: [
        {
          name: 'uploader',
          bottle: 'uploaded',
          command: ['sh', '-c', script.join('; ')],
          prompt: './prompt.md',
          skills: ['./skills/noting'],
          copy_cwd: true,
        },
      ],
    },
    {
      'docker/Dockerfile': 'FROM debian:bookworm-slim\nCOPY marker.txt /marker.txt\n',
      'docker/marker.txt': `${marker}\n`,
      'prompt.md': 'prompt from the CLI machine\n',
      'skills/noting/SKILL.md': 'skill from the CLI machine\n',
      'work/data.txt': 'working folder from the CLI machine\n',
    },
  );
  cliFolder = dirname(manifest);
  // Big enough that sending it is said (and not sending it again is seen).
  writeFileSync(join(cliFolder, 'work', 'weight.bin'), randomBytes(1536 * 1024));
  // The user's Claude Code preferences: the CLI's and the worker's machine each have their own.
  for (const [dir, theme] of [
    [cliClaudeDir, 'light-daltonized'],
    [workerClaudeDir, 'dark-ansi'],
  ]) {
    writeFileSync(join(dir, '.claude.json'), JSON.stringify({ theme, oauthAccount: { accountUuid: 'not-shared' } }));
  }
  worker = spawnHiding(cliFolder, [process.execPath, BOTTLE_BIN, 'worker', '--host', hostId], {
    ...h.env,
    CLAUDE_CONFIG_DIR: workerClaudeDir,
  });
  await until('the worker in its own mount namespace', () => hostIsLive(h, hostId));
}, 120_000);

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    const exited = new Promise((resolve) => worker!.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  for (const tag of builtImages)
    await h?.docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  await h?.cleanup();
  for (const dir of [cliClaudeDir, workerClaudeDir]) rmSync(dir, { recursive: true, force: true });
});

describe('sources from the CLI machine', () => {
  it("reach a worker that cannot see the CLI's files: image, prompt, skill and working folder", async () => {
    const work = join(cliFolder, 'work');
    const started = await run(['--manifest', manifest, 'start', 'uploader', '--host', hostId, '--cwd', work]);
    const identity = /bottle ([a-z0-9_-]+-[0-9a-z]{5}): starting/.exec(started.stderr)?.[1];
    const events = identity ? await h.log.read(identity) : [];
    const plan = BottlePlanSchema.parse(events.find((e) => e.type === 'bottle.start_requested')?.data.plan);
    builtImages.add(plan.image.tag);
    expect(started.code, show(started)).toBe(0);
    expect(started.stdout).toContain(marker);
    expect(started.stderr).toMatch(new RegExp(`uploaded the working folder ${work} \\(copy_cwd\\) \\(1\\.\\d MB\\)`));
    expect(started.stdout).toContain('prompt from the CLI machine');
    expect(started.stdout).toContain('skill from the CLI machine');
    expect(started.stdout).toContain('working folder from the CLI machine');
    // The display preferences are the CLI user's, and nothing else of their file.
    expect(started.stdout).toContain('"theme": "light-daltonized"');
    expect(started.stdout).not.toMatch(/dark-ansi|not-shared/);
    expect(plan.claude_preferences).toEqual({ global: { theme: 'light-daltonized' }, settings: {} });
    expect(plan.uploads?.map((u) => [u.source, u.reading])).toEqual([
      [join(cliFolder, 'docker'), 'build-context'],
      [work, 'copy'],
      [join(cliFolder, 'prompt.md'), 'file'],
      [join(cliFolder, 'skills/noting'), 'copy'],
    ]);
  }, 240_000);

  it('are sent once: a second start of the same content adds no blob', async () => {
    const before = await blobCount();
    expect(before).toBe(4);
    const again = await run([
      '--manifest',
      manifest,
      'start',
      'uploader',
      '--host',
      hostId,
      '--cwd',
      join(cliFolder, 'work'),
    ]);
    expect(again.code, show(again)).toBe(0);
    expect(again.stderr).not.toMatch(/^uploaded /m);
    expect(await blobCount()).toBe(before);
  }, 240_000);

  it('over the upload limit are refused before anything starts, with exit 2 and one line', async () => {
    const work = join(cliFolder, 'work');
    writeFileSync(join(work, 'big.bin'), Buffer.alloc(2 * 1024 * 1024));
    try {
      const listedBefore = (await run(['list', '--format', 'json'])).stdout;
      const refused = await run(['--manifest', manifest, 'start', 'uploader', '--host', hostId, '--cwd', work], {
        CLAUDE_BOTTLE_UPLOAD_LIMIT_MB: '1',
      });
      expect(refused.code, show(refused)).toBe(2);
      expect(refused.stderr.trim().split('\n').at(-1)).toMatch(
        new RegExp(
          `working folder ${work} \\(copy_cwd\\) is .*, ` +
            'over the upload limit of 1 MiB \\(CLAUDE_BOTTLE_UPLOAD_LIMIT_MB\\)',
        ),
      );
      expect(refused.stderr).not.toMatch(/\n\s+at /);
      expect((await run(['list', '--format', 'json'])).stdout).toBe(listedBefore);
    } finally {
      rmSync(join(work, 'big.bin'), { force: true });
    }
  }, 120_000);
});

describe('a bind-mounted working folder', () => {
  it("is a path on the bottle's host: one only the CLI sees fails the start with a clear message", async () => {
    const ghost = mkdtempSync(join(tmpdir(), 'cb-ghost-'));
    try {
      const bindManifest = h.writeManifest({
        bottles: [{ name: 'bound', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
        agents: [{ name: 'binder', bottle: 'bound', command: ['true'] }],
      });
      // The CLI creates the folder inside its own namespace: the Docker daemon's host never has it.
      const cli = spawnHiding(
        ghost,
        [
          'sh',
          '-c',
          'mkdir "$0/proj" && exec "$@"',
          ghost,
          process.execPath,
          BOTTLE_BIN,
          ...withYes(['--manifest', bindManifest, 'start', 'binder', '--host', hostId, '--cwd', join(ghost, 'proj')]),
        ],
        h.env,
      );
      let stderr = '';
      cli.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve));
      expect(code, stderr).toBe(1);
      expect(stderr).toContain(
        `the working folder ${join(ghost, 'proj')} does not exist on host ${hostId}, where the bottle runs`,
      );
    } finally {
      rmSync(ghost, { recursive: true, force: true });
    }
  }, 120_000);
});
