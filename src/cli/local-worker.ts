import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { buildId } from '../shared/build-id.js';
import { RuntimeFailure } from '../shared/errors.js';
import { bottleHome } from '../shared/paths.js';
import { processAlive } from '../shared/process-alive.js';
import type { RedisTarget } from '../shared/redis-target.js';
import { liveWorkers, type WorkerBeat } from '../engine/workers.js';
import { workerPaths } from '../engine/embedded.js';

/**
 * Makes sure a worker on this build serves the queue. With none alive it
 * starts a detached `bottle worker`. A live worker of another build (the
 * installation was upgraded since it started) runs old effect code against
 * new plans, so the local worker this CLI started (its pid file) is stopped
 * with SIGTERM, which hands running effects back to the queue, and replaced.
 * Workers this CLI did not start are left alone, with a note.
 */
export async function ensureWorker(
  target: RedisTarget,
  redis: Redis,
  say: (line: string) => void = () => undefined,
  forHost?: string,
): Promise<void> {
  const build = buildId();
  const onThisBuild = (live: WorkerBeat[]) => live.some((w) => w.build === build);
  // For a bottle's host, only the workers serving that host count.
  const liveNow = async () => (await liveWorkers(redis)).filter((w) => forHost === undefined || w.hostId === forHost);
  let live = await liveNow();
  if (onThisBuild(live)) return;
  if (live.length > 0 && !ownStaleWorker(live)) {
    say(otherBuildNote(live, build));
    return;
  }
  if (live.length === 0 && target.kind === 'url' && process.env.CLAUDE_BOTTLE_NO_EMBEDDED_WORKER) {
    throw new RuntimeFailure('no live worker for this Redis; start one with `bottle worker`');
  }
  // Several CLIs starting at once (e.g. ten `start --detach`) must start one worker, not one each:
  // whoever takes the lock spawns it, the others wait for its heartbeat.
  const lockKey = 'cb:worker-start-lock';
  for (let i = 0; ; i++) {
    if ((await redis.set(lockKey, String(process.pid), 'PX', 60_000, 'NX')) === 'OK') break;
    if (onThisBuild(await liveNow())) return;
    if (i >= 600)
      throw new RuntimeFailure(
        'another bottle command is starting the local worker, and it did not come up within 60 s; see ' +
          workerPaths().log,
      );
    await sleep(100);
  }
  try {
    // The lock holder before us may have just finished.
    live = await liveNow();
    if (onThisBuild(live)) return;
    const stale = ownStaleWorker(live);
    if (stale) await stopStaleWorker(redis, stale, build, say);
    else if (live.length > 0) return say(otherBuildNote(live, build));
    await spawnWorker(redis, say);
  } finally {
    await redis.del(lockKey).catch(() => undefined);
  }
}

/**
 * Starts the local worker again when the one this installation started has
 * died (its pid file names a process that is gone) and no other live worker
 * serves `hostId`. Its heartbeat outlives it for a while; it is removed at
 * once, so the restart does not wait for it to expire. Returns whether the
 * dead worker was found and replaced.
 */
export async function reviveLocalWorker(
  target: RedisTarget,
  redis: Redis,
  hostId: string,
  say: (line: string) => void = () => undefined,
): Promise<boolean> {
  const own = embeddedServices().find((s) => s.name === 'worker');
  if (!own || own.pid === null || own.running) return false;
  const live = await liveWorkers(redis);
  const dead = live.find((w) => w.pid === own.pid && w.host === hostname());
  if (live.some((w) => w !== dead && w.hostId === hostId)) return false;
  say(`the local worker (pid ${own.pid}) is gone; starting it again`);
  if (dead) await redis.del(dead.key);
  await ensureWorker(target, redis, say, hostId);
  return true;
}

/** The live worker this installation started (pid file, this host), if it runs another build. */
function ownStaleWorker(live: WorkerBeat[]): WorkerBeat | undefined {
  const path = workerPaths().pid;
  const pid = existsSync(path) ? Number(readFileSync(path, 'utf8').trim()) : 0;
  return pid > 0 ? live.find((w) => w.pid === pid && w.host === hostname()) : undefined;
}

function otherBuildNote(live: WorkerBeat[], build: string): string {
  const builds = [...new Set(live.map((w) => w.build || 'unknown'))].join(', ');
  const one = live.length === 1;
  return (
    `note: the live worker${one ? ' runs' : 's run'} build ${builds}, this bottle command is build ${build}; ` +
    `restart ${one ? 'it' : 'them'} (bottle worker) after an upgrade`
  );
}

async function stopStaleWorker(
  redis: Redis,
  stale: WorkerBeat,
  build: string,
  say: (line: string) => void,
): Promise<void> {
  // The heartbeat's host and pid matched our pid file (ownStaleWorker): this is the process we started.
  say(
    `restarting the local worker (pid ${stale.pid} runs build ${stale.build || 'unknown'}, this is ${build}); ` +
      'running bottles carry on',
  );
  try {
    process.kill(stale.pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  // A graceful stop hands long effects back to the queue for the new worker; wait until the
  // process is gone so no job can still run on the old code.
  for (let i = 0; i < 300; i++) {
    if (!processAlive(stale.pid)) {
      await redis.del(stale.key).catch(() => undefined);
      return;
    }
    await sleep(100);
  }
  throw new RuntimeFailure(
    `the local worker (pid ${stale.pid}) runs an older build and did not stop within 30 s; stop it and retry`,
  );
}

async function spawnWorker(redis: Redis, say: (line: string) => void): Promise<void> {
  const paths = workerPaths();
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const out = openSync(paths.log, 'a');
  say(`starting a local worker (log: ${paths.log})`);
  const child = spawn(process.execPath, [bottleBin(), 'worker'], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  closeSync(out);
  child.unref();
  if (child.pid) writeFileSync(paths.pid, `${child.pid}\n`);
  for (let i = 0; i < 200; i++) {
    if ((await liveWorkers(redis)).some((w) => w.pid === child.pid)) return;
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  const tail = existsSync(paths.log) ? readFileSync(paths.log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
  throw new RuntimeFailure(`the local worker did not start; see ${paths.log}${tail ? ` (${tail})` : ''}`);
}

/** bin/bottle.js of this installation, found relative to the compiled module. */
export function bottleBin(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, '..', '..', 'bin', 'bottle.js');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A service this state folder started and left running for the next command:
 * the embedded redis-server and the local worker. Each is known by the pid
 * file written when it was started; a pid is taken as the service's only
 * while that process still looks like it (its command line), so a pid reused
 * by an unrelated process is never reported, nor signalled, as ours.
 */
export interface EmbeddedService {
  name: 'redis-server' | 'worker';
  pidFile: string;
  /** From the pid file; null without one. */
  pid: number | null;
  /** The pid runs and its command line is this service's. */
  running: boolean;
  /** Where it serves or logs. */
  where: string;
}

export function embeddedServices(env: NodeJS.ProcessEnv = process.env): EmbeddedService[] {
  const redisDir = join(bottleHome(env), 'redis');
  const socket = join(redisDir, 'redis.sock');
  const worker = workerPaths(env);
  type LooksLike = (argv: string[]) => boolean;
  const service = (name: EmbeddedService['name'], pidFile: string, where: string, looksLike: LooksLike) => {
    const pid = readPid(pidFile);
    const running = pid !== null && processAlive(pid) && looksLike(commandLine(pid));
    return { name, pidFile, pid, running, where };
  };
  return [
    service('worker', worker.pid, `log ${worker.log}`, isBottleWorker),
    service('redis-server', join(redisDir, 'redis.pid'), `unix:${socket}`, (argv) => argv.join(' ').includes('redis')),
  ];
}

const isBottleWorker = (argv: string[]) => argv.includes('worker') && argv.some((a) => /bottle(\.js)?$/.test(a));

function readPid(path: string): number | null {
  if (!existsSync(path)) return null;
  const pid = Number(readFileSync(path, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Stops one embedded service with SIGTERM (the worker hands running effects
 * back to the queue; redis-server flushes its append-only file) and waits
 * for it to go. The pid file is removed once the process is gone.
 */
export async function stopEmbeddedService(
  svc: EmbeddedService,
  timeoutMs = 30_000,
): Promise<'stopped' | 'not running' | 'still running'> {
  if (!svc.running || svc.pid === null) {
    if (svc.pid !== null) rmSync(svc.pidFile, { force: true });
    return 'not running';
  }
  try {
    process.kill(svc.pid, 'SIGTERM');
  } catch {
    rmSync(svc.pidFile, { force: true });
    return 'not running';
  }
  for (let waited = 0; waited < timeoutMs; waited += 100) {
    if (!processAlive(svc.pid)) {
      rmSync(svc.pidFile, { force: true });
      return 'stopped';
    }
    await sleep(100);
  }
  return 'still running';
}
