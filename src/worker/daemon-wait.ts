import type { Job } from 'bullmq';
import { isDaemonUnreachable } from '../effects/errors.js';
import type { HostDaemon } from '../effects/types.js';
import { DAEMON_WAIT_BOUND_MS, daemonRetryDelay } from '../engine/queues.js';
import { DaemonNotAnswering } from './daemon-probe.js';

/** Said when an effect or the probe finds the daemon gone. */
export const DAEMON_AWAY = 'the Docker daemon does not answer; effects wait for it';

/** Marks kept in an effect job's data while its daemon is away (BullMQ keeps them across tries). */
interface DaemonWaitMarks {
  daemon_waits?: number;
  daemon_away_since?: number;
}

/** A failed try's verdict: the daemon is away, and the job waits for it (or has waited its bound). */
export interface DaemonAway {
  /** Tries spent waiting so far, this one included. */
  waits: number;
  /** The bound is spent: the failure is permanent. */
  exhausted: boolean;
}

/**
 * Whether a failure is the daemon's absence: the error says so (or the
 * worker's probe does), or the daemon does not answer right after it (a
 * request cut off by a stopping daemon fails with a reset, not a refusal).
 */
export async function daemonAwayAfter(err: unknown, daemon: HostDaemon | undefined): Promise<boolean> {
  if (isDaemonUnreachable(err) || err instanceof DaemonNotAnswering) return true;
  return daemon !== undefined && !(await daemon.reachable().catch(() => false));
}

/** Counts this try as a wait for the daemon in the job's data, and says whether the bound is spent. */
export async function markDaemonWait(job: Job, now: number = Date.now()): Promise<DaemonAway> {
  const marks = job.data as DaemonWaitMarks;
  const waits = (marks.daemon_waits ?? 0) + 1;
  const since = marks.daemon_away_since ?? now;
  const exhausted = now - since >= DAEMON_WAIT_BOUND_MS;
  if (!exhausted) await job.updateData({ ...job.data, daemon_waits: waits, daemon_away_since: since });
  return { waits, exhausted };
}

/** Delays the job until its next try while the daemon is away; the caller then throws DelayedError. */
export async function delayForDaemon(job: Job, waits: number, token: string | undefined): Promise<void> {
  await job.moveToDelayed(Date.now() + daemonRetryDelay(waits - 1), token);
}

/** The daemon answered again: a try that then succeeds or fails for another reason starts afresh. */
export async function clearDaemonWait(job: Job): Promise<void> {
  const marks = job.data as DaemonWaitMarks;
  if (marks.daemon_waits === undefined) return;
  const rest = { ...(job.data as Record<string, unknown>) };
  delete rest.daemon_waits;
  delete rest.daemon_away_since;
  await job.updateData(rest);
}
