import type { Queue } from 'bullmq';
import { isTerminal } from '../machines/index.js';
import type { BottleLog } from '../engine/bottle-log.js';
import type { DaemonProbe } from './daemon-probe.js';
import { DAEMON_AWAY } from './daemon-wait.js';
import type { BottleEngine } from './engine.js';
import type { EventStoreView, HostDaemon } from '../effects/types.js';

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

/** Runs the delayed effects of these queues now (those waiting for the daemon among them). */
export async function promoteDelayed(queues: readonly Queue[]): Promise<void> {
  for (const queue of queues) await queue.promoteJobs();
}

/** Reconciles one host one reconcile at a time: the one at start, then one per return of its daemon. */
export class HostReconciler {
  private reconciling: Promise<void> = Promise.resolve();

  constructor(
    private readonly reconcile: () => Promise<void>,
    private readonly say: (line: string) => void,
  ) {}

  /** Reconciles after any reconcile under way; fails as the reconcile does. */
  now(): Promise<void> {
    return this.inTurn(this.reconcile);
  }

  /**
   * Whether or not this worker watches a bottle, it notices its daemon leave
   * and return; on each return the host is reconciled and the effects that
   * waited for the daemon (delayed in `waiting`) run at once.
   */
  follow(probe: Pick<DaemonProbe, 'subscribe'>, waiting: () => readonly Queue[]): void {
    probe.subscribe((answering) => {
      if (!answering) return this.say(DAEMON_AWAY);
      this.say('the Docker daemon answers again: reconciling this host');
      this.inTurn(async () => {
        await this.reconcile();
        await promoteDelayed(waiting());
      }).catch((err: unknown) => this.say(`reconcile failed: ${(err as Error).message}`));
    });
  }

  /** Settles once no reconcile is under way or queued. */
  settled(): Promise<void> {
    return this.reconciling;
  }

  private inTurn(work: () => Promise<void>): Promise<void> {
    const turn = this.reconciling.then(work);
    this.reconciling = turn.catch(() => undefined);
    return turn;
  }
}
