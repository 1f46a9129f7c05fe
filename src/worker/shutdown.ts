import { setMaxListeners } from 'node:events';
import { DelayedError, type Job } from 'bullmq';

/** How soon a job handed back at shutdown can be taken again (by another worker, or this one restarted). */
const HAND_BACK_DELAY_MS = 250;

/** An effect that returned because the worker is stopping: its outcome is not the effect's. */
export class ShutdownInterrupt extends Error {}

/**
 * A worker's stop: every running effect is aborted, and the job it was
 * running goes back to the queue untouched, for another worker to pick up.
 */
export class Shutdown {
  private readonly controller = new AbortController();

  constructor() {
    // Every running effect listens for shutdown; concurrency bounds them, not 10.
    setMaxListeners(0, this.controller.signal);
  }

  get begun(): boolean {
    return this.controller.signal.aborted;
  }

  begin(): void {
    this.controller.abort();
  }

  /** Aborts `effect` when the worker stops; the returned function stops listening. */
  abortOnStop(effect: AbortController): () => void {
    const onStop = () => effect.abort();
    this.controller.signal.addEventListener('abort', onStop, { once: true });
    return () => this.controller.signal.removeEventListener('abort', onStop);
  }

  /** Moves the job back to the queue; BullMQ takes the DelayedError thrown as "moved, neither done nor failed". */
  async handBack(job: Job, token: string | undefined): Promise<never> {
    await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
    throw new DelayedError();
  }
}
