import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { isDaemonUnreachable } from '../../../src/effects/errors.js';
import { DAEMON_WAIT_BOUND_MS, daemonRetryDelay } from '../../../src/engine/queues.js';
import type { HostDaemon } from '../../../src/effects/types.js';
import { clearDaemonWait, daemonAwayAfter, markDaemonWait } from '../../../src/worker/daemon-wait.js';

const socketError = (code: string, syscall = 'connect') =>
  Object.assign(new Error(`${syscall} ${code} /var/run/docker.sock`), { code, syscall });

/** Just what the daemon-wait marks use of a BullMQ job: its data, and updating it. */
function fakeJob(data: Record<string, unknown> = {}): Job {
  const job = {
    data,
    async updateData(next: Record<string, unknown>) {
      job.data = next;
    },
  };
  return job as unknown as Job;
}

describe('a Docker daemon that cannot be reached', () => {
  it('is recognised from the socket error of a connect, direct or wrapped', () => {
    expect(isDaemonUnreachable(socketError('ECONNREFUSED'))).toBe(true);
    expect(isDaemonUnreachable(socketError('ENOENT'))).toBe(true);
    expect(isDaemonUnreachable(new Error('start_gateway failed', { cause: socketError('ECONNREFUSED') }))).toBe(true);
    expect(isDaemonUnreachable(new Error('build: connect ENOENT /var/run/docker.sock (after 2 s)'))).toBe(true);
  });

  it('is not a missing file, a refusal by the daemon, or any other failure', () => {
    expect(isDaemonUnreachable(socketError('ENOENT', 'open'))).toBe(false);
    expect(isDaemonUnreachable(Object.assign(new Error('conflict'), { statusCode: 409 }))).toBe(false);
    expect(isDaemonUnreachable(new Error('no such file'))).toBe(false);
    expect(isDaemonUnreachable(undefined)).toBe(false);
  });

  it('is also a failure after which the daemon does not answer (a request cut off by a stopping daemon)', async () => {
    const down: HostDaemon = {
      reachable: async () => false,
      removeLeftovers: async () => ({ containers: [], networks: [] }),
    };
    const up: HostDaemon = { ...down, reachable: async () => true };
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(await daemonAwayAfter(reset, down)).toBe(true);
    expect(await daemonAwayAfter(reset, up)).toBe(false);
    expect(await daemonAwayAfter(reset, undefined)).toBe(false);
  });
});

describe('waiting for the daemon', () => {
  it('counts the waits in the job and spends the bound from the first, in minutes', async () => {
    const job = fakeJob({ kind: 'preserve' });
    const t0 = 1_000_000;
    expect(await markDaemonWait(job, t0)).toEqual({ waits: 1, exhausted: false });
    expect(await markDaemonWait(job, t0 + 60_000)).toEqual({ waits: 2, exhausted: false });
    expect(job.data).toMatchObject({ kind: 'preserve', daemon_waits: 2, daemon_away_since: t0 });
    expect(DAEMON_WAIT_BOUND_MS).toBeGreaterThanOrEqual(2 * 60_000);
    expect((await markDaemonWait(job, t0 + DAEMON_WAIT_BOUND_MS)).exhausted).toBe(true);
  });

  it('starts afresh once the daemon answered', async () => {
    const job = fakeJob({ kind: 'preserve', daemon_waits: 3, daemon_away_since: 5 });
    await clearDaemonWait(job);
    expect(job.data).toEqual({ kind: 'preserve' });
    expect(await markDaemonWait(job, 10)).toEqual({ waits: 1, exhausted: false });
  });

  it('backs off from a second to a quarter-minute', () => {
    const delays = Array.from({ length: 40 }, (_, i) => daemonRetryDelay(i));
    expect(delays[0]).toBe(1000);
    expect(delays.every((d, i) => i === 0 || d >= delays[i - 1])).toBe(true);
    expect(Math.max(...delays)).toBe(15_000);
  });
});
