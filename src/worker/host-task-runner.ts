import { UnrecoverableError } from 'bullmq';
import type { EventStoreView, HostTaskHandlers } from '../effects/types.js';
import { CleanupReportSchema, type CleanupReport, type HostTask } from '../engine/host-tasks.js';

/** Runs a host-wide task (cleanup) a CLI asked for; a worker without host tasks refuses them once, visibly. */
export function hostTaskRunner(
  handlers: HostTaskHandlers | undefined,
  store: EventStoreView,
  say: (line: string) => void,
): (task: HostTask) => Promise<CleanupReport> {
  return async (task) => {
    if (!handlers) throw new UnrecoverableError(`this worker runs no host tasks (asked for ${task.task})`);
    say(`host task ${task.task}${task.dry_run ? ' (dry run)' : ''}`);
    return CleanupReportSchema.parse(await handlers.cleanup(task, store));
  };
}
