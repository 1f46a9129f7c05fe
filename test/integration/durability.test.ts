import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EventLog, stampEvents } from '../../src/event-store/log.js';
import type { NewEvent } from '../../src/events/schema.js';
import { foldEvent, initialBottleState, type BottleState } from '../../src/machines/index.js';
import { processAlive } from '../../src/shared/process-alive.js';
import { BOTTLE_BIN, REPO } from '../support/cli-harness.js';
import { fakePlan } from '../support/fake-plan.js';

/**
 * Issue 14 item 6: the embedded redis-server fsyncs its append-only file on
 * every write, so an append Redis acknowledged is on disk. Here appends run
 * concurrently against the embedded default (temp CLAUDE_BOTTLE_HOME, no
 * REDIS_URL), redis-server is SIGKILLed in the middle of them, and the next
 * CLI command restarts it: every acknowledged event is back, in order.
 */
const home = mkdtempSync(join(tmpdir(), 'cb-durability-'));
const env: NodeJS.ProcessEnv = { ...process.env, CLAUDE_BOTTLE_HOME: home };
delete env.REDIS_URL;
delete env.CLAUDE_BOTTLE_MANIFEST;
const socket = join(home, 'redis', 'redis.sock');
const redisPidFile = join(home, 'redis', 'redis.pid');
const workerPidFile = join(home, 'worker', 'worker.pid');

const pidFrom = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0);
const bottle = (args: string[]) =>
  spawnSync(process.execPath, [BOTTLE_BIN, ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A connection that gives up at once when Redis goes away, so in-flight appends fail instead of waiting. */
const connect = () => {
  const redis = new Redis({ path: socket, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  return redis;
};

const egress = (n: number): NewEvent => ({
  type: 'egress.allowed',
  data: { n, host: 'api.anthropic.com', port: 443, method: 'CONNECT', reason: 'allowlisted' },
});

async function commit(log: EventLog, identity: string, state: BottleState, events: NewEvent[]): Promise<BottleState> {
  const stamped = stampEvents(state.seq, events, new Date().toISOString());
  let next = state;
  for (const ev of stamped) next = foldEvent(next, ev).state;
  await log.append(identity, state.seq, stamped, next);
  return next;
}

afterAll(async () => {
  for (const pidFile of [workerPidFile, redisPidFile]) {
    const pid = pidFrom(pidFile);
    if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && pid > 0 && processAlive(pid); i++) await sleep(100);
    if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(home, { recursive: true, force: true });
});

describe('durability of the embedded default', () => {
  it('runs redis-server with the append-only file fsynced on every write', async () => {
    const listed = bottle(['list']);
    expect(listed.status, listed.stderr).toBe(0);
    const redis = connect();
    try {
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    } finally {
      redis.disconnect();
    }
  });

  // A SIGKILL leaves the kernel's page cache, so this pins the append-only file and the restart, not the fsync
  // (the test above pins that); a machine crash is what fsync on every write is for.
  it('acknowledged appends are read back from the append-only file after SIGKILL and the restart', async () => {
    const firstPid = pidFrom(redisPidFile);
    expect(processAlive(firstPid)).toBe(true);
    const identities = Array.from({ length: 8 }, (_, i) => `durable${i}-a${String(i).padStart(4, '0')}`);
    const acknowledged = new Map<string, BottleState>();
    const redis = connect();
    const log = new EventLog(redis);
    let killed = false;
    // Each bottle appends one event at a time; what the last resolved append returned is acknowledged.
    const appending = identities.map(async (identity) => {
      let state = await commit(log, identity, initialBottleState(identity), [
        { type: 'bottle.start_requested', data: { plan: fakePlan(identity) } },
      ]);
      acknowledged.set(identity, state);
      try {
        for (let n = 1; !killed; n++) {
          state = await commit(log, identity, state, [egress(n)]);
          acknowledged.set(identity, state);
        }
      } catch {
        // Redis went away mid-append: that append was never acknowledged.
      }
    });
    const total = () => [...acknowledged.values()].reduce((sum, s) => sum + s.seq, 0);
    for (let i = 0; i < 600 && total() < 400; i++) await sleep(50);
    expect(total()).toBeGreaterThanOrEqual(400);
    process.kill(firstPid, 'SIGKILL');
    killed = true;
    await Promise.all(appending);
    redis.disconnect();
    for (let i = 0; i < 50 && processAlive(firstPid); i++) await sleep(100);
    expect(processAlive(firstPid)).toBe(false);

    const listed = bottle(['list']);
    expect(listed.status, listed.stderr).toBe(0);
    const secondPid = pidFrom(redisPidFile);
    expect(secondPid).not.toBe(firstPid);
    expect(processAlive(secondPid)).toBe(true);

    const reopened = connect();
    try {
      const reread = new EventLog(reopened);
      for (const identity of identities) {
        const acked = acknowledged.get(identity)!.seq;
        const events = await reread.read(identity);
        expect(events.length, identity).toBeGreaterThanOrEqual(acked);
        expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
        expect(events[0].type).toBe('bottle.start_requested');
        expect(events.slice(1, acked).map((e) => (e.data as { n: number }).n)).toEqual(
          Array.from({ length: acked - 1 }, (_, i) => i + 1),
        );
        expect(listed.stdout).toContain(identity);
      }
    } finally {
      reopened.disconnect();
    }
  });
});
