import { writeFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { daemonFacts, dockerClient } from '../../effects/docker/client.js';
import { cleanupHost, removeLeftovers } from '../../effects/cleanup.js';
import { effectHandlers } from '../../effects/index.js';
import { UsageError } from '../../shared/errors.js';
import { redisTarget } from '../../shared/redis-target.js';
import { connectRedis } from '../../worker/redis.js';
import { HOST_ID_PATTERN } from '../../worker/heartbeat.js';
import { runWorker } from '../../worker/worker.js';
import { ensureRedis, workerPaths } from '../embedded.js';
import type { CliIO } from '../io.js';

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
    log: (line) => io.stderr(`${stamp()} ${line}`),
  });
  if (target.kind === 'embedded') {
    const paths = workerPaths();
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.pid, `${process.pid}\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      io.stderr(`${stamp()} ${sig}: finishing current jobs, handing long effects back to the queue`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await running.close();
  io.stderr(`${stamp()} worker stopped`);
  return 0;
}
