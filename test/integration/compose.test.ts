import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { EventLog } from '../../src/event-store/log.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { PROMPT_TARGET, SKILLS_TARGET_DIR } from '../../src/plan/agent-env.js';
import { liveWorkers } from '../../src/engine/workers.js';
import { BOTTLE_BIN, identityFrom, PIN_DEFAULT_HOSTS, REPO, withYes, type CliResult } from '../support/cli-harness.js';

/**
 * Issue 14 item 5: `docker-compose up` (Debian's docker-compose) builds the Redis and worker images
 * of docker-compose.yml from this repository on the local base image and starts them; a bottle
 * started by the CLI on this machine, with REDIS_URL at the compose Redis, runs through them to
 * cleaned. The project name, Redis port, state folder and host id are the test's own; `down -v
 * --rmi local` removes its containers, volume and the images built under its project name.
 */
const run = promisify(execFile);
const suffix = randomBytes(3).toString('hex');
const project = `cbcompose${suffix}`;
const hostId = `compose-${suffix}`;
const home = mkdtempSync(join(tmpdir(), 'cb-compose-home-'));
const manifestDir = mkdtempSync(join(tmpdir(), 'cb-compose-manifest-'));
// The agents' working folder: not this repository, the installation, which the agent is refused.
const workdir = mkdtempSync(join(tmpdir(), 'cb-compose-project-'));
const manifest = join(manifestDir, 'claude-bottle.json');
const identities: string[] = [];
const builtImages: string[] = [];
const marker = `marker-${suffix}-${randomBytes(4).toString('hex')}`;
let port = 0;
let password = '';
let redis: Redis | undefined;
const passwordFile = join(home, 'redis-password');

const composeEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CLAUDE_BOTTLE_REDIS_PORT: String(port),
    CLAUDE_BOTTLE_REDIS_ADDRESS: '127.0.0.1',
    CLAUDE_BOTTLE_HOME: home,
    CLAUDE_BOTTLE_HOST_ID: hostId,
  };
  for (const name of ['CLAUDE_BOTTLE_UID', 'CLAUDE_BOTTLE_GID', 'CLAUDE_BOTTLE_DOCKER_GID']) delete env[name];
  return env;
};
const compose = (args: string[], timeoutMs = 900_000) =>
  run('docker-compose', ['-p', project, '-f', join(REPO, 'docker-compose.yml'), ...args], {
    cwd: REPO,
    env: composeEnv(),
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });

/** The CLI on this machine, pointed at the compose Redis; it must not start a worker of its own. */
function bottle(args: string[], redisUrl = `redis://:${password}@127.0.0.1:${port}`): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redisUrl,
    CLAUDE_BOTTLE_HOME: home,
    CLAUDE_BOTTLE_NO_EMBEDDED_WORKER: '1',
  };
  delete env.CLAUDE_BOTTLE_MANIFEST;
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [BOTTLE_BIN, ...withYes(args)], { cwd: workdir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? 1, stdout, stderr });
    });
  });
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject()));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms: no`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const eventsUntil = (log: EventLog, identity: string, type: string) =>
  until(`${identity} reaches ${type}`, async () => {
    const events = await log.read(identity);
    return events.some((e) => e.type === type) ? events : undefined;
  });

beforeAll(async () => {
  const present = await run('docker-compose', ['version', '--short']).catch(() => undefined);
  if (!present) throw new Error('docker-compose is not installed: run scripts/setup-env.sh (as root)');
  port = await freeLoopbackPort();
  // A non-default port whatever the kernel handed out: never the test Redis on 6379.
  if (port === 6379) port = await freeLoopbackPort();
  // The custom bottle's files live only here, in a folder the compose worker's container does not mount.
  const showInputs = [
    'cat /marker.txt',
    `cat ${PROMPT_TARGET}`,
    `cat ${SKILLS_TARGET_DIR}/noting/SKILL.md`,
    'cat data.txt',
  ];
  mkdirSync(join(manifestDir, 'docker'));
  mkdirSync(join(manifestDir, 'skills/noting'), { recursive: true });
  mkdirSync(join(manifestDir, 'work'));
  writeFileSync(join(manifestDir, 'docker/Dockerfile'), 'FROM debian:bookworm-slim\nCOPY marker.txt /marker.txt\n');
  writeFileSync(join(manifestDir, 'docker/marker.txt'), `${marker}\n`);
  writeFileSync(join(manifestDir, 'prompt.md'), 'prompt from the CLI side\n');
  writeFileSync(join(manifestDir, 'skills/noting/SKILL.md'), 'skill from the CLI side\n');
  writeFileSync(join(manifestDir, 'work/data.txt'), 'working folder from the CLI side\n');
  writeFileSync(
    manifest,
    JSON.stringify({
      bottles: [
        { name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        { name: 'custom', dockerfile: './docker/Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
      ],
      agents: [
        { name: 'ok', bottle: 'box', command: ['bash', '-c', 'echo through compose; exit 0'] },
        {
          name: 'inputs',
          bottle: 'custom',
          command: ['sh', '-c', showInputs.join('; ')],
          prompt: './prompt.md',
          skills: ['./skills/noting'],
          copy_cwd: true,
        },
      ],
    }),
  );
  await compose(['up', '-d', '--build']);
  password = readFileSync(passwordFile, 'utf8').trim();
  redis = new Redis({ host: '127.0.0.1', port, password, maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
});

afterAll(async () => {
  redis?.disconnect();
  for (const tag of builtImages)
    await new Docker()
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  if (port > 0) await compose(['down', '-v', '--rmi', 'local'], 300_000).catch(() => undefined);
  const docker = new Docker();
  for (const identity of identities) await removeBottleResources(docker, identity).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
  rmSync(manifestDir, { recursive: true, force: true });
  rmSync(workdir, { recursive: true, force: true });
});

describe('docker-compose.yml', () => {
  it('runs Redis with every append fsynced, on the named volume', async () => {
    const conn = redis!;
    await until('the compose Redis answers', async () => ((await conn.ping()) === 'PONG' ? true : undefined));
    expect(await conn.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await conn.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    expect(await conn.config('GET', 'dir')).toEqual(['dir', '/data']);
  });

  it('requires a password, made at the first up into the state folder (0600) and kept by the next', async () => {
    expect(password).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
    const refusal = async (pass?: string) => {
      const client = new Redis({
        host: '127.0.0.1',
        port,
        password: pass,
        lazyConnect: true,
        enableReadyCheck: false,
        retryStrategy: () => null,
      });
      // A refused AUTH closes the connection; what Redis said comes as an error event.
      let said = '';
      client.on('error', (err: Error) => (said ||= err.message));
      try {
        await client.connect();
        return await client.get('cb:store-id').then(
          () => 'answered',
          (err: Error) => `${said} ${err.message}`,
        );
      } catch (err) {
        return `${said} ${(err as Error).message}`;
      } finally {
        client.disconnect();
      }
    };
    expect(await refusal()).toMatch(/NOAUTH/);
    expect(await refusal('not-the-password')).toMatch(/WRONGPASS|invalid password/);
    expect(await refusal(password)).toBe('answered');
    await compose(['up', '-d']);
    expect(readFileSync(passwordFile, 'utf8').trim()).toBe(password);
    // doctor, pointed at the compose Redis without the password, says how to set REDIS_URL.
    const doctor = await bottle(['doctor'], `redis://127.0.0.1:${port}`);
    expect(doctor.stdout).toContain(`export REDIS_URL="redis://:$(cat ${passwordFile})@127.0.0.1:${port}"`);
    expect(doctor.stdout + doctor.stderr).not.toContain(password);
  }, 300_000);

  it('a bottle started by the CLI here runs through the compose worker to cleaned', async () => {
    const conn = redis!;
    const worker = await until('the compose worker beats', async () =>
      (await liveWorkers(conn)).find((w) => w.hostId === hostId),
    );
    const started = await bottle(['--manifest', manifest, 'start', 'ok', '--detach', '--host', hostId]);
    expect(started.code, started.stderr).toBe(0);
    const identity = identityFrom(started);
    identities.push(identity);
    const log = new EventLog(conn);
    const events = await eventsUntil(log, identity, 'bottle.cleaned');
    const first = events[0] as Extract<LifecycleEvent, { type: 'bottle.start_requested' }>;
    expect(first.data.plan.host).toBe(hostId);
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 0 });
    // The only worker is the compose one: the CLI started none on this machine.
    expect((await liveWorkers(conn)).map((w) => w.pid)).toEqual([worker.pid]);
    expect(existsSync(join(home, 'worker', 'worker.pid'))).toBe(false);
    const listed = await bottle(['list', '--all']);
    expect(listed.stdout).toMatch(new RegExp(`${identity}\\s+ok\\s+box\\s+cleaned\\s.*\\s${hostId}\\s`));

    // Redis killed outright and started again: the bottle's history is back from the volume.
    await compose(['kill', '-s', 'SIGKILL', 'redis'], 120_000);
    await compose(['start', 'redis'], 120_000);
    const reread = await until('the compose Redis is back', () => log.read(identity));
    expect(reread).toEqual(events);
  });

  it("a bottle whose Dockerfile, prompt, skill and copied folder exist only on the CLI's side runs there", async () => {
    const started = await bottle([
      '--manifest',
      manifest,
      'start',
      'inputs',
      '--host',
      hostId,
      '--cwd',
      join(manifestDir, 'work'),
    ]);
    const identity = /bottle ([a-z0-9_-]+-[0-9a-z]{5}): starting/.exec(started.stderr)?.[1];
    if (identity) identities.push(identity);
    const events = identity ? await new EventLog(redis!).read(identity) : [];
    const first = events[0] as Extract<LifecycleEvent, { type: 'bottle.start_requested' }> | undefined;
    if (first) builtImages.push(first.data.plan.image.tag);
    expect(started.code, started.stderr).toBe(0);
    for (const line of [
      marker,
      'prompt from the CLI side',
      'skill from the CLI side',
      'working folder from the CLI side',
    ])
      expect(started.stdout).toContain(line);
  });
});
