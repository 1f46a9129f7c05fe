import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { EventLog } from '../../src/event-store/log.js';
import { processAlive } from '../../src/shared/process-alive.js';
import { liveWorkers } from '../../src/engine/workers.js';
import { BOTTLE_BIN, PIN_DEFAULT_HOSTS, withYes } from '../support/cli-harness.js';

/**
 * With no REDIS_URL, one machine needs no configuration: the CLI starts a
 * redis-server (unix socket, AOF) under the state directory and a detached
 * worker, and reuses both next time.
 */
const home = mkdtempSync(join(tmpdir(), 'cb-embedded-'));
const manifestDir = mkdtempSync(join(tmpdir(), 'cb-embedded-manifest-'));
// The agents' working folder: not this repository, the installation, which the agent is refused.
const project = mkdtempSync(join(tmpdir(), 'cb-embedded-project-'));
const manifest = join(manifestDir, 'claude-bottle.json');
const env: NodeJS.ProcessEnv = { ...process.env, CLAUDE_BOTTLE_HOME: home };
delete env.REDIS_URL;
delete env.CLAUDE_BOTTLE_MANIFEST;
const identities: string[] = [];

const pidFrom = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0);
const alive = processAlive;
const bottleWith = (extra: NodeJS.ProcessEnv, args: string[]) =>
  spawnSync(process.execPath, [BOTTLE_BIN, ...withYes(args)], {
    cwd: project,
    env: { ...env, ...extra },
    encoding: 'utf8',
    timeout: 240_000,
  });
const bottle = (args: string[]) => bottleWith({}, args);
const sleeperManifest = join(manifestDir, 'sleeper.json');

beforeAll(() => {
  writeFileSync(
    manifest,
    JSON.stringify({
      bottles: [{ name: 'box', extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'ok', bottle: 'box', command: ['true'] }],
    }),
  );
  writeFileSync(
    sleeperManifest,
    JSON.stringify({
      bottles: [{ name: 'box', extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'sleeper', bottle: 'box', command: ['sleep', '600'] }],
    }),
  );
});
afterAll(async () => {
  const docker = new Docker();
  for (const id of identities) await removeBottleResources(docker, id).catch(() => undefined);
  for (const pidFile of [join(home, 'worker', 'worker.pid'), join(home, 'redis', 'redis.pid')]) {
    const pid = pidFrom(pidFile);
    if (alive(pid)) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(home, { recursive: true, force: true });
  rmSync(manifestDir, { recursive: true, force: true });
  rmSync(project, { recursive: true, force: true });
});

describe('embedded default', () => {
  it('starts redis-server (AOF, unix socket under the state dir) and a worker, then reuses both', async () => {
    const first = bottle(['--manifest', manifest, 'start', 'ok', '--detach']);
    expect(first.status, first.stderr).toBe(0);
    identities.push(first.stdout.split('\n')[0]);
    const socket = join(home, 'redis', 'redis.sock');
    expect(existsSync(socket)).toBe(true);
    const redisPid = pidFrom(join(home, 'redis', 'redis.pid'));
    const workerPid = pidFrom(join(home, 'worker', 'worker.pid'));
    expect(alive(redisPid)).toBe(true);
    expect(alive(workerPid)).toBe(true);
    expect(first.stderr).toContain('starting embedded redis-server');

    const redis = new Redis({ path: socket });
    try {
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      const second = bottle(['--manifest', manifest, 'start', 'ok', '--detach']);
      expect(second.status, second.stderr).toBe(0);
      identities.push(second.stdout.split('\n')[0]);
      expect(second.stderr).not.toContain('starting embedded redis-server');
      expect(second.stderr).not.toContain('starting a local worker');
      expect(pidFrom(join(home, 'redis', 'redis.pid'))).toBe(redisPid);
      expect(pidFrom(join(home, 'worker', 'worker.pid'))).toBe(workerPid);
      // Both bottles live in the embedded Redis's event log.
      const listed = (await new EventLog(redis).listBottles()).map((b) => b.identity);
      expect(listed).toEqual(expect.arrayContaining(identities));
    } finally {
      redis.disconnect();
    }
  });

  it('on upgrade (another build), the next start replaces the local worker; a running bottle carries on', async () => {
    const socket = join(home, 'redis', 'redis.sock');
    const longLived = bottle(['--manifest', sleeperManifest, 'start', 'sleeper', '--detach']);
    expect(longLived.status, longLived.stderr).toBe(0);
    const sleeperId = longLived.stdout.split('\n')[0];
    identities.push(sleeperId);
    const oldWorker = pidFrom(join(home, 'worker', 'worker.pid'));
    expect(alive(oldWorker)).toBe(true);

    // doctor from the "new" build sees the mismatch before anything restarts it.
    const upgraded = { CLAUDE_BOTTLE_BUILD_ID: 'upgraded-build-test' };
    const doctor = bottleWith(upgraded, ['doctor']);
    expect(doctor.stdout).toMatch(/not all on this build \(upgraded-build-test\)/);

    const next = bottleWith(upgraded, ['--manifest', manifest, 'start', 'ok', '--detach']);
    expect(next.status, next.stderr).toBe(0);
    identities.push(next.stdout.split('\n')[0]);
    expect(next.stderr).toMatch(/restarting the local worker \(pid \d+ runs build \S+, this is upgraded-build-test\)/);
    const newWorker = pidFrom(join(home, 'worker', 'worker.pid'));
    expect(newWorker).not.toBe(oldWorker);
    expect(alive(oldWorker)).toBe(false);
    const redis = new Redis({ path: socket });
    try {
      const beats = (await liveWorkers(redis)).map((w) => ({ pid: w.pid, build: w.build }));
      expect(beats).toEqual([{ pid: newWorker, build: 'upgraded-build-test' }]);
      // The bottle started under the old worker is still watched: stopping it runs to preserved.
      const stopped = bottleWith(upgraded, ['stop', sleeperId]);
      expect(stopped.status, stopped.stderr).toBe(0);
      const types = (await new EventLog(redis).read(sleeperId)).map((e) => e.type);
      expect(types).toContain('agent.exited');
      expect(types.at(-1)).toBe('bottle.preserved');
    } finally {
      redis.disconnect();
    }
  });
});
