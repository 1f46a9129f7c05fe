import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { PermanentEffectError } from '../../../src/effects/types.js';
import { HOST_TASK_JOB } from '../../../src/engine/host-tasks.js';
import { routeJobs, type JobRoutes } from '../../../src/worker/job-router.js';
import { fakeJob } from './fake-job.js';

function routesThatRecord() {
  const seen: [string, unknown][] = [];
  const routes: JobRoutes = {
    command: async (cmd) => seen.push(['command', cmd]),
    effect: async (_job, req, token) => seen.push(['effect', { req, token }]),
    hostTask: async (task) => seen.push(['hostTask', task]),
  };
  return { route: routeJobs(routes), seen };
}

describe('routing a job', () => {
  it('hands a command its parsed data', async () => {
    const { route, seen } = routesThatRecord();
    const data = {
      identity: 'dev-a1b2c',
      command_id: 'c1',
      event: { type: 'bottle.stop_requested', data: { by: 'cli' } },
    };
    await route(fakeJob({ name: 'command', data }).job);
    expect(seen).toEqual([['command', data]]);
  });

  it('hands an effect its checked request and the lock token', async () => {
    const { route, seen } = routesThatRecord();
    const data = { kind: 'watch_agent', identity: 'dev-a1b2c', causedBySeq: 9, params: {} };
    await route(fakeJob({ name: 'effect', data }).job, 'tok');
    expect(seen).toEqual([['effect', { req: data, token: 'tok' }]]);
  });

  it('hands a host task its parsed task', async () => {
    const { route, seen } = routesThatRecord();
    await route(fakeJob({ name: HOST_TASK_JOB, data: { task: 'cleanup', dry_run: true } }).job);
    expect(seen).toEqual([['hostTask', expect.objectContaining({ task: 'cleanup', dry_run: true })]]);
  });

  it('fails an effect no handler can run once, without retries', async () => {
    const { route, seen } = routesThatRecord();
    const job = fakeJob({ name: 'effect', data: { kind: 'summon_dragons', identity: 'dev-a1b2c', causedBySeq: 1 } });
    await expect(route(job.job)).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(route(job.job)).rejects.toThrow('unknown effect "summon_dragons"');
    expect(seen).toEqual([]);
  });

  it('refuses a job of a name it does not know', async () => {
    const { route, seen } = routesThatRecord();
    await expect(route(fakeJob({ name: 'reboot' }).job)).rejects.toThrow(
      new PermanentEffectError('unknown job reboot'),
    );
    expect(seen).toEqual([]);
  });
});
