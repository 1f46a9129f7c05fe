import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { processAlive } from '../../src/shared/process-alive.js';
import { BOTTLE_BIN, PIN_DEFAULT_HOSTS } from '../support/cli-harness.js';

/**
 * Issue 13 item 8: the embedded redis-server and worker outlive the command
 * that started them; `bottle doctor` shows them and `bottle shutdown` stops
 * exactly those (by the pid files under this state folder), refusing while a
 * bottle runs. Everything runs on a temp CLAUDE_BOTTLE_HOME with no REDIS_URL,
 * started through a real CLI command as a user would.
 */
const home = mkdtempSync(join(tmpdir(), 'cb-shutdown-home-'));
const manifestDir = mkdtempSync(join(tmpdir(), 'cb-shutdown-manifest-'));
const manifest = join(manifestDir, 'claude-bottle.json');
// The bottle's working folder: never the repository, which the working-folder rule refuses.
const project = mkdtempSync(join(tmpdir(), 'cb-shutdown-project-'));
const env: NodeJS.ProcessEnv = { ...process.env, CLAUDE_BOTTLE_HOME: home };
delete env.REDIS_URL;
delete env.CLAUDE_BOTTLE_MANIFEST;
const identities: string[] = [];
const redisPidFile = join(home, 'redis', 'redis.pid');
const workerPidFile = join(home, 'worker', 'worker.pid');
let decoy: ChildProcess;

const pidFrom = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0);
const bottle = (args: string[]) =>
  spawnSync(process.execPath, [BOTTLE_BIN, ...args], { cwd: project, env, encoding: 'utf8', timeout: 240_000 });

beforeAll(() => {
  const box = { name: 'box', extra_hosts: PIN_DEFAULT_HOSTS };
  const sleeper = { name: 'sleeper', bottle: 'box', command: ['sleep', '600'] };
  writeFileSync(manifest, JSON.stringify({ bottles: [box], agents: [sleeper] }));
  // A process of ours that no shutdown may touch, even when a stale pid file names it.
  decoy = spawn('sleep', ['600'], { stdio: 'ignore' });
});

afterAll(async () => {
  const docker = new Docker();
  for (const id of identities) await removeBottleResources(docker, id).catch(() => undefined);
  for (const pid of [pidFrom(workerPidFile), pidFrom(redisPidFile)]) {
    if (pid > 0 && pid !== decoy.pid && processAlive(pid)) process.kill(pid, 'SIGTERM');
  }
  decoy.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
  rmSync(manifestDir, { recursive: true, force: true });
  rmSync(project, { recursive: true, force: true });
});

describe('bottle shutdown', () => {
  it('doctor shows the embedded services; shutdown refuses while a bottle runs, then stops only them', async () => {
    const started = bottle(['--manifest', manifest, 'start', 'sleeper', '--detach', '--yes']);
    expect(started.status, started.stderr).toBe(0);
    const identity = started.stdout.split('\n')[0];
    identities.push(identity);
    const redisPid = pidFrom(redisPidFile);
    let workerPid = pidFrom(workerPidFile);
    expect(processAlive(redisPid) && processAlive(workerPid)).toBe(true);

    const doctor = bottle(['doctor']);
    const socket = join(home, 'redis', 'redis.sock');
    expect(doctor.stdout, doctor.stderr).toContain(`embedded redis-server running (pid ${redisPid}, unix:${socket})`);
    expect(doctor.stdout).toContain(`embedded worker running (pid ${workerPid}`);
    expect(doctor.stdout).toContain('bottle shutdown');

    const refused = bottle(['shutdown']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(identity);
    expect(refused.stderr).toContain('--force');
    expect(processAlive(redisPid) && processAlive(workerPid)).toBe(true);

    const stopped = bottle(['--manifest', manifest, 'stop', identity]);
    expect(stopped.status, stopped.stderr).toBe(0);
    // Read again: a command run after dist/ was rebuilt replaces the local worker (another build).
    workerPid = pidFrom(workerPidFile);

    const shutdown = bottle(['shutdown']);
    expect(shutdown.status, shutdown.stderr).toBe(0);
    expect(shutdown.stdout).toContain(`stopped worker (pid ${workerPid}`);
    expect(shutdown.stdout).toContain(`stopped redis-server (pid ${redisPid}`);
    expect(processAlive(redisPid)).toBe(false);
    expect(processAlive(workerPid)).toBe(false);
    expect(existsSync(join(home, 'redis', 'redis.sock'))).toBe(false);
    expect(existsSync(workerPidFile)).toBe(false);
    // Nothing else: the decoy and the machine's shared Redis still run.
    expect(processAlive(decoy.pid!)).toBe(true);
    const sharedUrl = process.env.REDIS_URL_TEST ?? 'redis://127.0.0.1:6379';
    const shared = new Redis(sharedUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await shared.connect();
      expect(await shared.ping()).toBe('PONG');
    } finally {
      shared.disconnect();
    }

    const afterDoctor = bottle(['doctor']);
    expect(afterDoctor.stdout, afterDoctor.stderr).toContain('embedded redis-server not running');
    expect(afterDoctor.stdout).toContain('embedded worker not running');
  }, 300_000);

  it('a stale pid file naming another process is never signalled', () => {
    writeFileSync(workerPidFile, `${decoy.pid}\n`);
    const doctor = bottle(['doctor']);
    expect(doctor.stdout).toContain(`stale pid file ${workerPidFile}`);
    const shutdown = bottle(['shutdown']);
    expect(shutdown.status, shutdown.stderr).toBe(0);
    expect(shutdown.stdout).toContain('nothing to stop');
    expect(processAlive(decoy.pid!)).toBe(true);
    expect(existsSync(workerPidFile)).toBe(false);
  }, 120_000);
});
