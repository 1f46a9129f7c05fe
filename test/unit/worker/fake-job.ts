import type { Job } from 'bullmq';

/** Just what the worker's parts use of a BullMQ job: its name, data and tries, and moving it back to the queue. */
export interface FakeJob {
  job: Job;
  /** Each moveToDelayed: when the job may run again, and the lock token it was moved with. */
  delays: { until: number; token: string | undefined }[];
}

export function fakeJob(
  init: { name?: string; data?: object; attemptsMade?: number; attempts?: number } = {},
): FakeJob {
  const delays: FakeJob['delays'] = [];
  const job = {
    name: init.name ?? 'effect',
    data: init.data ?? {},
    attemptsMade: init.attemptsMade ?? 0,
    opts: { attempts: init.attempts ?? 5 },
    async updateData(next: object) {
      job.data = next;
    },
    async moveToDelayed(until: number, token?: string) {
      delays.push({ until, token });
    },
  };
  return { job: job as unknown as Job, delays };
}
