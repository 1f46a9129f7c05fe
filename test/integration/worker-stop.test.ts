import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { liveWorkers } from '../../src/engine/workers.js';
import { BOTTLE_BIN, REPO } from '../support/cli-harness.js';
import { startTestRedis } from '../support/redis-server.js';
import { until } from '../support/workers.js';

/**
 * A worker stops on SIGTERM even when it can no longer reach Redis: a clean
 * stop hands its jobs back through Redis, so it waits for that, but only for
 * CLAUDE_BOTTLE_WORKER_STOP_SECONDS, and a second signal ends it at once.
 */

const home = mkdtempSync(join(tmpdir(), 'cb-worker-stop-'));
const started = new Set<ChildProcess>();

afterAll(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

/** Starts a worker on a Redis of its own, removes that Redis, then sends SIGTERM `signals` times. */
async function stopWithRedisGone(
  env: NodeJS.ProcessEnv,
  signals: number,
): Promise<{ code: number | null; stderr: string }> {
  const redis = await startTestRedis();
  const hostId = `cb-stop-${randomBytes(3).toString('hex')}`;
  const worker = spawn(process.execPath, [BOTTLE_BIN, 'worker', '--host', hostId], {
    cwd: REPO,
    env: { ...process.env, REDIS_URL: redis.url, CLAUDE_BOTTLE_HOME: home, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.add(worker);
  let stderr = '';
  worker.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
  const conn = new Redis({ path: redis.socket, maxRetriesPerRequest: 1 });
  try {
    await until('the worker beats', async () => (await liveWorkers(conn)).some((w) => w.hostId === hostId));
  } finally {
    conn.disconnect();
    await redis.destroy();
  }
  worker.kill('SIGTERM');
  if (signals > 1) {
    await until('the first signal noted', async () => stderr.includes('SIGTERM: finishing current jobs'));
    worker.kill('SIGTERM');
  }
  return { code: await exited, stderr };
}

describe('bottle worker whose Redis is gone', () => {
  it('stops within its bound after SIGTERM, with exit 1 and one line saying what was left', async () => {
    const run = await stopWithRedisGone({ CLAUDE_BOTTLE_WORKER_STOP_SECONDS: '2' }, 1);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /worker stopped without finishing its shutdown \(not done within 2 s \(is Redis reachable/,
    );
    expect(run.stderr).toMatch(/its unfinished jobs are taken again once their locks lapse/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('stops at once on a second SIGTERM', async () => {
    const run = await stopWithRedisGone({}, 2);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/worker stopped without finishing its shutdown \(SIGTERM again\)/);
  }, 60_000);
});
