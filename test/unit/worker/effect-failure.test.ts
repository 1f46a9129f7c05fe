import { DelayedError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { PermanentEffectError, type HostDaemon } from '../../../src/effects/types.js';
import type { NewEvent } from '../../../src/events/schema.js';
import type { EffectRequest } from '../../../src/machines/index.js';
import { EffectFailurePolicy } from '../../../src/worker/effect-failure.js';
import { DAEMON_AWAY } from '../../../src/worker/daemon-wait.js';
import { Shutdown } from '../../../src/worker/shutdown.js';
import { fakeJob } from './fake-job.js';

const req = { kind: 'start_agent', identity: 'dev-a1b2c', causedBySeq: 7, params: {} } as unknown as EffectRequest;
const CAUSE = 'effect.dev-a1b2c.7.start_agent';
const refused = () => Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' });
const daemonThatAnswers = (answers: boolean): HostDaemon => ({
  reachable: async () => answers,
  removeLeftovers: async () => ({ containers: [], networks: [] }),
});

function policyWith(opts: { daemon?: HostDaemon; probeNews?: boolean; shutdown?: Shutdown } = {}) {
  const appended: { events: NewEvent[]; cause: string }[] = [];
  const lines: string[] = [];
  const policy = new EffectFailurePolicy({
    apply: async (_identity, events, cause) => appended.push({ events, cause }),
    daemon: opts.daemon ?? daemonThatAnswers(true),
    probe: opts.probeNews === undefined ? undefined : { away: () => opts.probeNews! },
    shutdown: opts.shutdown ?? new Shutdown(),
    say: (line) => lines.push(line),
  });
  return { policy, appended, lines };
}

describe('a failed try of an effect', () => {
  it('is recorded and retried by the queue while tries are left', async () => {
    const { policy, appended, lines } = policyWith();
    const { job } = fakeJob({ attemptsMade: 1 });
    const err = new Error('image pull timed out');
    await expect(policy.settle(job, 'tok', req, err)).rejects.toBe(err);
    expect(appended).toEqual([
      {
        events: [
          {
            type: 'effect.failed',
            data: { effect: 'start_agent', error: 'image pull timed out', attempt: 2, permanent: false },
          },
        ],
        cause: `${CAUSE}.failed.2`,
      },
    ]);
    expect(lines).toEqual(['effect start_agent dev-a1b2c failed: image pull timed out']);
  });

  it('is permanent on the last try, and ends the job with the failure as its result', async () => {
    const { policy, appended, lines } = policyWith();
    const { job } = fakeJob({ attemptsMade: 4, attempts: 5 });
    expect(await policy.settle(job, 'tok', req, new Error('no space left'))).toEqual({ failed: 'no space left' });
    expect(appended[0].events[0].data).toMatchObject({ attempt: 5, permanent: true });
    expect(appended[0].cause).toBe(`${CAUSE}.failed.5`);
    expect(lines).toEqual(['effect start_agent dev-a1b2c failed permanently: no space left']);
  });

  it('is permanent at once when the effect says so, whatever tries are left', async () => {
    const { policy, appended } = policyWith({ daemon: daemonThatAnswers(false) });
    const { job, delays } = fakeJob({ attemptsMade: 0 });
    const result = await policy.settle(job, 'tok', req, new PermanentEffectError('the image has no agent'));
    expect(result).toEqual({ failed: 'the image has no agent' });
    expect(appended[0].events[0].data).toMatchObject({ attempt: 1, permanent: true });
    expect(delays).toEqual([]);
  });
});

describe('a try that failed because the Docker daemon is away', () => {
  it('waits for the daemon without spending a try: recorded under its wait, then delayed', async () => {
    const { policy, appended, lines } = policyWith({ probeNews: true });
    const { job, delays } = fakeJob({ attemptsMade: 2, data: { kind: 'start_agent' } });
    const before = Date.now();
    await expect(policy.settle(job, 'tok', req, refused())).rejects.toBeInstanceOf(DelayedError);
    expect(appended).toHaveLength(1);
    expect(appended[0].cause).toBe(`${CAUSE}.daemon.1`);
    expect(appended[0].events[0].data).toMatchObject({ attempt: 3, permanent: false });
    expect(job.data).toMatchObject({ daemon_waits: 1 });
    expect(delays).toHaveLength(1);
    expect(delays[0].token).toBe('tok');
    expect(delays[0].until).toBeGreaterThanOrEqual(before + 1000);
    expect(lines).toEqual([
      DAEMON_AWAY,
      'effect start_agent dev-a1b2c waits for the Docker daemon: connect ECONNREFUSED /var/run/docker.sock',
    ]);
  });

  it('says the daemon is away only when the probe had not found it so', async () => {
    const { policy, lines } = policyWith({ probeNews: false });
    const { job } = fakeJob();
    await expect(policy.settle(job, 'tok', req, refused())).rejects.toBeInstanceOf(DelayedError);
    expect(lines).not.toContain(DAEMON_AWAY);
  });

  it('counts a failure after which the daemon does not answer as its absence', async () => {
    const { policy, appended } = policyWith({ daemon: daemonThatAnswers(false) });
    const { job } = fakeJob();
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    await expect(policy.settle(job, 'tok', req, reset)).rejects.toBeInstanceOf(DelayedError);
    expect(appended[0].cause).toBe(`${CAUSE}.daemon.1`);
  });

  it('is permanent once the wait has lasted its bound', async () => {
    const { policy, appended } = policyWith();
    const { job, delays } = fakeJob({ data: { daemon_waits: 40, daemon_away_since: 0 } });
    expect(await policy.settle(job, 'tok', req, refused())).toEqual({ failed: refused().message });
    expect(appended[0].events[0].data).toMatchObject({ attempt: 1, permanent: true });
    expect(appended[0].cause).toBe(`${CAUSE}.failed.1`);
    expect(delays).toEqual([]);
  });

  it('starts afresh when the next failure is not the daemon', async () => {
    const { policy } = policyWith();
    const { job } = fakeJob({ data: { kind: 'start_agent', daemon_waits: 2, daemon_away_since: Date.now() } });
    await expect(policy.settle(job, 'tok', req, new Error('conflict'))).rejects.toThrow('conflict');
    expect(job.data).toEqual({ kind: 'start_agent' });
  });
});

describe('a try that failed while the worker stops', () => {
  it('goes back to the queue untouched: nothing recorded, the job delayed under its lock', async () => {
    const shutdown = new Shutdown();
    shutdown.begin();
    const { policy, appended, lines } = policyWith({ shutdown });
    const { job, delays } = fakeJob({ attemptsMade: 4 });
    await expect(policy.settle(job, 'tok', req, new Error('aborted'))).rejects.toBeInstanceOf(DelayedError);
    expect(appended).toEqual([]);
    expect(lines).toEqual([]);
    expect(delays.map((d) => d.token)).toEqual(['tok']);
  });

  it('is still recorded when the failure is permanent', async () => {
    const shutdown = new Shutdown();
    shutdown.begin();
    const { policy, appended } = policyWith({ shutdown });
    const { job, delays } = fakeJob();
    expect(await policy.settle(job, 'tok', req, new PermanentEffectError('bad plan'))).toEqual({ failed: 'bad plan' });
    expect(appended).toHaveLength(1);
    expect(delays).toEqual([]);
  });
});
