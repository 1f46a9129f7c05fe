import { DelayedError, type Job } from 'bullmq';
import { PermanentEffectError, type HostDaemon } from '../effects/types.js';
import type { NewEvent } from '../events/schema.js';
import type { EffectRequest } from '../machines/index.js';
import { EFFECT_ATTEMPTS, effectJobId } from '../engine/queues.js';
import { DAEMON_AWAY, clearDaemonWait, daemonAwayAfter, delayForDaemon, markDaemonWait } from './daemon-wait.js';
import { ShutdownInterrupt, type Shutdown } from './shutdown.js';

export interface EffectFailureDeps {
  /** Appends to the bottle's log under `cause`, so a retried append is not doubled. */
  apply(identity: string, events: NewEvent[], cause: string): Promise<unknown>;
  daemon?: HostDaemon;
  /** Told when an effect finds the daemon away; says whether that is news. */
  probe?: { away(): boolean };
  shutdown: Shutdown;
  say: (line: string) => void;
}

/** A permanent failure is the job's result: the machine decides what follows from its effect.failed. */
export interface PermanentFailure {
  failed: string;
}

/**
 * What becomes of an effect's failed try, in this order: at shutdown the job
 * goes back to the queue untouched; while the daemon is away it waits for it
 * without spending a try, within a bound; otherwise the failure is recorded
 * and the try is retried by BullMQ, or, when permanent (the effect says so,
 * the daemon wait is spent, or so are the tries), ends the job.
 */
export class EffectFailurePolicy {
  constructor(private readonly deps: EffectFailureDeps) {}

  /** Returns the job's result for a permanent failure; otherwise throws what BullMQ retries or delays on. */
  async settle(job: Job, token: string | undefined, req: EffectRequest, err: unknown): Promise<PermanentFailure> {
    const { shutdown, say } = this.deps;
    if (err instanceof ShutdownInterrupt || (shutdown.begun && !(err instanceof PermanentEffectError))) {
      return shutdown.handBack(job, token);
    }
    const cause = effectJobId(req);
    const message = err instanceof Error ? err.message : String(err);
    const away = !(err instanceof PermanentEffectError) && (await daemonAwayAfter(err, this.deps.daemon));
    const daemonWait = away ? await markDaemonWait(job) : undefined;
    if (daemonWait && !daemonWait.exhausted) {
      // Visible per try, but no try is spent: the job is delayed until the daemon answers, within a bound.
      if (this.deps.probe?.away()) say(DAEMON_AWAY);
      const attempt = job.attemptsMade + daemonWait.waits;
      say(`effect ${req.kind} ${req.identity} waits for the Docker daemon: ${message}`);
      await this.deps.apply(
        req.identity,
        [{ type: 'effect.failed', data: { effect: req.kind, error: message, attempt, permanent: false } }],
        `${cause}.daemon.${daemonWait.waits}`,
      );
      await delayForDaemon(job, daemonWait.waits, token);
      throw new DelayedError();
    }
    if (!away) await clearDaemonWait(job);
    const attempt = job.attemptsMade + 1;
    const permanent =
      err instanceof PermanentEffectError ||
      daemonWait?.exhausted === true ||
      attempt >= (job.opts.attempts ?? EFFECT_ATTEMPTS);
    say(`effect ${req.kind} ${req.identity} failed${permanent ? ' permanently' : ''}: ${message}`);
    await this.deps.apply(
      req.identity,
      [{ type: 'effect.failed', data: { effect: req.kind, error: message, attempt, permanent } }],
      `${cause}.failed.${attempt}`,
    );
    if (permanent) return { failed: message };
    throw err;
  }
}
