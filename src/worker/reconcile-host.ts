import type { Job, Queue } from 'bullmq';
import { isDaemonUnreachable } from '../effects/errors.js';
import { isTerminal } from '../machines/index.js';
import type { BottleLog } from '../engine/bottle-log.js';
import { DaemonNotAnswering } from './daemon-probe.js';
import type { BottleEngine } from './engine.js';
import type { EventStoreView, HostDaemon } from '../effects/types.js';
import { DAEMON_WAIT_BOUND_MS, daemonRetryDelay } from '../engine/queues.js';

/**
 * What a worker does when it starts, and again when its daemon answers after
 * being away: effects a bottle waits on are enqueued again (a worker that died
 * between an append and its enqueue, or mid-effect, left them unfinished;
 * every effect is idempotent, so running one again finishes it), and
 * resources of bottles that no longer exist here, or ended, are removed.
 * A running bottle whose agent vanished is not judged here: its watch_agent,
 * enqueued again, observes the container gone and records the exit, so the
 * bottle takes the crash path and keeps its state.
 */
export async function reconcileHost(deps: {
  log: BottleLog;
  /** The host this worker serves: other hosts' bottles are their workers' to reconcile. */
  hostId: string;
  engine: BottleEngine;
  store: EventStoreView;
  daemon?: HostDaemon;
  say: (line: string) => void;
}): Promise<void> {
  let enqueued = 0;
  for (const entry of await deps.log.listBottles()) {
    // An entry indexed before hosts were recorded has none: its fold says where it runs.
    if (entry.host && entry.host !== deps.hostId) continue;
    const live = await deps.log.liveState(entry.identity);
    // A live state cached by another machine version reads as null: the fold decides.
    if (!live || !isTerminal(live)) enqueued += await deps.engine.reconcile(entry.identity);
  }
  if (enqueued > 0) deps.say(`reconcile: ${enqueued} unfinished effect(s) enqueued again`);
  if (!deps.daemon || !(await deps.daemon.reachable())) return;
  const removed = await deps.daemon.removeLeftovers(deps.store);
  const gone = [...removed.containers, ...removed.networks];
  if (gone.length > 0) deps.say(`reconcile: removed leftovers of ended or unknown bottles: ${gone.join(', ')}`);
}

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
  const { daemon_waits: _waits, daemon_away_since: _since, ...rest } = job.data as Record<string, unknown>;
  await job.updateData(rest);
}

/** Runs the delayed effects of these queues now (those waiting for the daemon among them). */
export async function promoteDelayed(queues: readonly Queue[]): Promise<void> {
  for (const queue of queues) await queue.promoteJobs();
}
