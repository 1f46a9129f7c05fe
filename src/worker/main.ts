import { writeFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonFacts, dockerClient } from '../effects/docker/client.js';
import { cleanupHost, removeLeftovers } from '../effects/host-cleanup.js';
import { effectHandlers } from '../effects/index.js';
import { readUpstreamCa } from '../effects/upstream-ca.js';
import { UsageError } from '../shared/errors.js';
import { visibleText } from '../shared/visible-text.js';
import { redisTarget } from '../shared/redis-target.js';
import { connectRedis } from '../engine/redis.js';
import { HOST_ID_PATTERN } from '../engine/workers.js';
import { runWorker, type RunningWorker, type WorkerOptions } from './worker.js';
import { ensureRedis, workerPaths } from '../engine/embedded.js';
import type { CliIO } from '../shared/io.js';

/** The flags of `bottle worker`, as commander hands them over. */
export interface WorkerCommandOptions {
  concurrency?: string;
  host?: string;
}

/** How long a stopping worker may take to finish its jobs and leave Redis cleanly, in seconds. */
export const STOP_SECONDS_ENV = 'CLAUDE_BOTTLE_WORKER_STOP_SECONDS';
const DEFAULT_STOP_SECONDS = 60;

/**
 * The worker program (`bottle worker`): serves this Docker host's effects
 * until SIGTERM/SIGINT, then stops gracefully, within a bound.
 */
export async function runWorkerCommand(opts: WorkerCommandOptions, io: CliIO): Promise<number> {
  const { concurrency, hostId } = checkedFlags(opts);
  const stopSeconds = stopBound(process.env);
  const target = redisTarget();
  await ensureRedis(target, (l) => io.stderr(l));
  // Effect errors can quote a bottle (a gateway's last lines, an approved Dockerfile's build output).
  const log = (line: string) => io.stderr(`${stamp()} ${visibleText(line)}`);
  const running = await runWorker({
    connect: () => connectRedis(target),
    ...(await dockerHost(hostId, log)),
    concurrency,
    log,
  });
  if (target.kind === 'embedded') recordPid();
  const first = await stopSignal();
  io.stderr(`${stamp()} ${first}: finishing current jobs, handing long effects back to the queue`);
  return stopWithin(running, stopSeconds, io);
}

function checkedFlags(opts: WorkerCommandOptions): { concurrency: number; hostId: string } {
  const concurrency = opts.concurrency === undefined ? 32 : Number(opts.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`--concurrency must be a positive integer, got ${JSON.stringify(opts.concurrency)}`);
  const hostId = opts.host ?? hostname();
  if (!HOST_ID_PATTERN.test(hostId)) {
    throw new UsageError(
      `--host must be letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit), ` +
        `got ${JSON.stringify(hostId)}`,
    );
  }
  return { concurrency, hostId };
}

function stopBound(env: NodeJS.ProcessEnv): number {
  const configured = env[STOP_SECONDS_ENV];
  if (configured === undefined || configured === '') return DEFAULT_STOP_SECONDS;
  const seconds = Number(configured);
  if (!Number.isInteger(seconds) || seconds < 1) {
    throw new UsageError(
      `${STOP_SECONDS_ENV} must be a whole number of seconds (at least 1), got ${JSON.stringify(configured)}`,
    );
  }
  return seconds;
}

/** This host's Docker daemon as the worker uses it: its effects, host tasks, liveness and facts. */
async function dockerHost(hostId: string, log: (line: string) => void): Promise<Omit<WorkerOptions, 'connect'>> {
  const docker = dockerClient();
  // A daemon not answering yet is not fatal: the worker's effects report it when they run.
  const facts = await daemonFacts(docker).catch(() => ({ runtimes: [], engineId: '' }));
  const upstreamCa = readUpstreamCa(process.env);
  for (const root of upstreamCa?.roots ?? []) log(`gateways trust upstream root ${root}, from ${upstreamCa!.file}`);
  return {
    handlers: effectHandlers({ docker, log, ...(upstreamCa ? { upstreamCa: upstreamCa.pem } : {}) }),
    hostTasks: { cleanup: (task, store) => cleanupHost(docker, task, store) },
    daemon: {
      reachable: () =>
        docker.ping().then(
          () => true,
          () => false,
        ),
      removeLeftovers: (store) => removeLeftovers(docker, store),
    },
    runtimes: facts.runtimes,
    host: { id: hostId, engineId: facts.engineId },
  };
}

/** With the embedded Redis, the CLI tells the worker it started (to restart or revive it) by this file. */
function recordPid(): void {
  const paths = workerPaths();
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  writeFileSync(paths.pid, `${process.pid}\n`);
}

function stopSignal(): Promise<NodeJS.Signals> {
  const signalled = (sig: NodeJS.Signals) =>
    new Promise<NodeJS.Signals>((resolve) => process.once(sig, () => resolve(sig)));
  return Promise.race([signalled('SIGTERM'), signalled('SIGINT')]);
}

/** A clean stop needs Redis; one that cannot reach it must still end: on a second signal, or after the bound. */
async function stopWithin(running: RunningWorker, seconds: number, io: CliIO): Promise<number> {
  const outcome = await Promise.race([
    running.close().then(() => 'closed' as const),
    stopSignal().then((sig) => `${sig} again` as const),
    sleep(seconds * 1000, 'timeout' as const, { ref: false }),
  ]);
  if (outcome === 'closed') {
    io.stderr(`${stamp()} worker stopped`);
    return 0;
  }
  const why = outcome === 'timeout' ? `not done within ${seconds} s (is Redis reachable?)` : outcome;
  io.stderr(
    `${stamp()} worker stopped without finishing its shutdown (${why}); ` +
      'its unfinished jobs are taken again once their locks lapse',
  );
  // Redis clients still retrying would keep the process alive.
  process.exit(1);
}

function stamp(): string {
  return new Date().toISOString();
}
