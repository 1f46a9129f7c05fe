import { writeFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonFacts, dockerClient } from '../effects/docker/client.js';
import { cleanupHost, removeLeftovers } from '../effects/host-cleanup.js';
import { effectHandlers } from '../effects/index.js';
import { UsageError } from '../shared/errors.js';
import { visibleText } from '../shared/visible-text.js';
import { redisTarget } from '../shared/redis-target.js';
import { connectRedis } from '../engine/redis.js';
import { HOST_ID_PATTERN } from '../engine/workers.js';
import { runWorker } from './worker.js';
import { ensureRedis, workerPaths } from '../engine/embedded.js';
import type { CliIO } from '../shared/io.js';

/** `bottle worker`: runs effects for this Docker host until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runWorkerCommand(opts: { concurrency?: string; host?: string }, io: CliIO): Promise<number> {
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
  const closeBound = stopBound(process.env);
  const target = redisTarget();
  await ensureRedis(target, (l) => io.stderr(l));
  const stamp = () => new Date().toISOString();
  const docker = dockerClient();
  // A daemon not answering yet is not fatal: the worker's effects report it when they run.
  const daemon = await daemonFacts(docker).catch(() => ({ runtimes: [], engineId: '' }));
  const running = await runWorker({
    connect: () => connectRedis(target),
    handlers: effectHandlers({ docker }),
    hostTasks: { cleanup: (task, store) => cleanupHost(docker, task, store) },
    daemon: {
      reachable: () =>
        docker.ping().then(
          () => true,
          () => false,
        ),
      removeLeftovers: (store) => removeLeftovers(docker, store),
    },
    runtimes: daemon.runtimes,
    host: { id: hostId, engineId: daemon.engineId },
    concurrency,
    // Effect errors can quote a bottle (a gateway's last lines, an approved Dockerfile's build output).
    log: (line) => io.stderr(`${stamp()} ${visibleText(line)}`),
  });
  if (target.kind === 'embedded') {
    const paths = workerPaths();
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.pid, `${process.pid}\n`);
  }
  const signalled = (sig: NodeJS.Signals) =>
    new Promise<NodeJS.Signals>((resolve) => process.once(sig, () => resolve(sig)));
  const first = await Promise.race([signalled('SIGTERM'), signalled('SIGINT')]);
  io.stderr(`${stamp()} ${first}: finishing current jobs, handing long effects back to the queue`);
  // A clean stop needs Redis; one that cannot reach it must still end: on a second signal, or after a bound.
  const outcome = await Promise.race([
    running.close().then(() => 'closed' as const),
    Promise.race([signalled('SIGTERM'), signalled('SIGINT')]).then((sig) => `${sig} again` as const),
    sleep(closeBound * 1000, 'timeout' as const, { ref: false }),
  ]);
  if (outcome === 'closed') {
    io.stderr(`${stamp()} worker stopped`);
    return 0;
  }
  const why = outcome === 'timeout' ? `not done within ${closeBound} s (is Redis reachable?)` : outcome;
  io.stderr(
    `${stamp()} worker stopped without finishing its shutdown (${why}); ` +
      'its unfinished jobs are taken again once their locks lapse',
  );
  // Redis clients still retrying would keep the process alive.
  process.exit(1);
}

/** How long a stopping worker may take to finish its jobs and leave Redis cleanly, in seconds. */
export const STOP_SECONDS_ENV = 'CLAUDE_BOTTLE_WORKER_STOP_SECONDS';
const DEFAULT_STOP_SECONDS = 60;

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
