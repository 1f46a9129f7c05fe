import type { Job } from 'bullmq';
import type { EffectContext, EffectHandlers } from '../effects/types.js';
import type { NewEvent } from '../events/schema.js';
import type { BottleState, EffectRequest } from '../machines/index.js';
import { effectJobId } from '../engine/queues.js';
import { trace } from '../shared/trace.js';
import type { EffectFailurePolicy } from './effect-failure.js';
import { ShutdownInterrupt, type Shutdown } from './shutdown.js';

export interface EffectRunnerDeps {
  handlers: EffectHandlers;
  /** The bottle's state, and the decide step its outcome goes through (appended under `cause`). */
  engine: {
    currentState(identity: string): Promise<{ state: BottleState }>;
    apply(identity: string, events: readonly NewEvent[], cause?: string): Promise<unknown>;
  };
  /** The context of one try; its uploads are disposed once the try ends. */
  context(identity: string, state: BottleState, signal: AbortSignal): EffectContext;
  failure: Pick<EffectFailurePolicy, 'settle'>;
  shutdown: Shutdown;
  say: (line: string) => void;
}

/**
 * Runs one try of an effect job: its handler, given the bottle's plan and
 * this host's means, and appends what it reports under the job's id (a
 * retried job's outcome is not appended twice); a failed try goes to the
 * failure policy.
 */
export class EffectRunner {
  private watchedBottles = 0;

  constructor(private readonly deps: EffectRunnerDeps) {}

  /** The bottles this worker is watching: its agent watches in flight (a bottle's sidecar watch is no other bottle). */
  get watching(): number {
    return this.watchedBottles;
  }

  async run(job: Job, req: EffectRequest, token?: string): Promise<unknown> {
    if (req.kind !== 'watch_agent') return this.tryOnce(job, req, token);
    this.watchedBottles += 1;
    try {
      return await this.tryOnce(job, req, token);
    } finally {
      this.watchedBottles -= 1;
    }
  }

  private async tryOnce(job: Job, req: EffectRequest, token: string | undefined): Promise<unknown> {
    const { engine, shutdown, say } = this.deps;
    const { state } = await engine.currentState(req.identity);
    const effectAbort = new AbortController();
    const ctx = this.deps.context(req.identity, state, effectAbort.signal);
    const stopListening = shutdown.abortOnStop(effectAbort);
    say(`effect ${req.kind} ${req.identity} (caused by #${req.causedBySeq}, attempt ${job.attemptsMade + 1})`);
    const begun = performance.now();
    try {
      const events = await runHandler(this.deps.handlers, req, ctx);
      if (effectAbort.signal.aborted && shutdown.begun) throw new ShutdownInterrupt();
      await engine.apply(req.identity, events, effectJobId(req));
      trace(`effect ${req.kind} ${req.identity} done in ${(performance.now() - begun).toFixed(0)} ms`);
      return { events: events.map((e) => e.type) };
    } catch (err) {
      return await this.deps.failure.settle(job, token, req, err);
    } finally {
      stopListening();
      await ctx.uploads.dispose();
    }
  }
}

/** The handler of the request's kind; the table's type pairs each kind with its own request and outcomes. */
function runHandler(handlers: EffectHandlers, req: EffectRequest, ctx: EffectContext): Promise<NewEvent[]> {
  const handler = handlers[req.kind] as (req: EffectRequest, ctx: EffectContext) => Promise<NewEvent[]>;
  return handler(req, ctx);
}
