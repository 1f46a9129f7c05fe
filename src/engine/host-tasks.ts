import { z } from 'zod';

/**
 * Work for a Docker host that belongs to no single bottle (`bottle cleanup`):
 * queued like effects, run by the worker that owns the daemon and the state
 * folder, answered through the job's result.
 */
export const HOST_TASK_JOB = 'host_task';

export const CleanupTaskSchema = z.object({
  task: z.literal('cleanup'),
  /** List what would go, remove nothing. */
  dry_run: z.boolean(),
});
export type CleanupTask = z.infer<typeof CleanupTaskSchema>;

export const HostTaskSchema = CleanupTaskSchema;
export type HostTask = z.infer<typeof HostTaskSchema>;

const RemovedResourceSchema = z.object({
  name: z.string(),
  /** Its bottle is not live, or it is a network of an earlier version. */
  why: z.enum(['not-live', 'earlier-version']),
});

export const CleanupReportSchema = z.object({
  dry_run: z.boolean(),
  containers: z.array(RemovedResourceSchema),
  networks: z.array(RemovedResourceSchema),
  /** State folders nothing will resume. */
  state: z.array(z.string()),
  /** Superseded claude-bottle images no preserved or running bottle uses. */
  images: z.array(z.object({ tag: z.string(), bytes: z.number().nonnegative() })).default([]),
  /** Superseded images the daemon would not remove (a container outside claude-bottle uses one). */
  images_skipped: z.array(z.object({ tag: z.string(), reason: z.string() })).default([]),
  /** Space given back by removing those images (0 on a dry run). */
  freed_bytes: z.number().nonnegative().default(0),
});
export type CleanupReport = z.infer<typeof CleanupReportSchema>;
