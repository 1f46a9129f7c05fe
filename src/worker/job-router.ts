import { UnrecoverableError, type Job } from 'bullmq';
import { PermanentEffectError } from '../effects/types.js';
import { InvalidEffectRequestError, parseEffectRequest, type EffectRequest } from '../machines/index.js';
import { HOST_TASK_JOB, HostTaskSchema, type HostTask } from '../engine/host-tasks.js';
import { CommandJobSchema, type CommandJob } from '../engine/queues.js';

/** Where each kind of job a worker takes is run. */
export interface JobRoutes {
  command(cmd: CommandJob): Promise<unknown>;
  effect(job: Job, req: EffectRequest, token?: string): Promise<unknown>;
  hostTask(task: HostTask): Promise<unknown>;
}

/** BullMQ's processor for every queue a worker serves: checks each job's data and hands it to its route. */
export function routeJobs(routes: JobRoutes): (job: Job, token?: string) => Promise<unknown> {
  return async (job, token) => {
    if (job.name === 'command') return routes.command(CommandJobSchema.parse(job.data));
    if (job.name === 'effect') return routes.effect(job, effectRequestOf(job), token);
    if (job.name === HOST_TASK_JOB) return routes.hostTask(HostTaskSchema.parse(job.data));
    throw new PermanentEffectError(`unknown job ${job.name}`);
  };
}

function effectRequestOf(job: Job): EffectRequest {
  try {
    return parseEffectRequest(job.data);
  } catch (err) {
    // A job no handler can run (from another version, or corrupted) fails once, visibly.
    if (err instanceof InvalidEffectRequestError) throw new UnrecoverableError(err.message);
    throw err;
  }
}
