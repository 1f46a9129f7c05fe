import type { DaemonLiveness } from '../effects/types.js';

/** A failure that is the daemon's absence as the worker's probe found it, not any request's own error. */
export class DaemonNotAnswering extends Error {
  constructor() {
    super('the Docker daemon does not answer');
    this.name = 'DaemonNotAnswering';
  }
}

export interface DaemonProbeTiming {
  /** Between asks while the daemon answers: how soon a watch notices it gone. */
  answeringMs: number;
  /** Between asks while it is away: how soon its return is noticed. */
  awayMs: number;
}

const DEFAULT_TIMING: DaemonProbeTiming = { answeringMs: 5000, awayMs: 2000 };

/**
 * The one ask a worker makes of its Docker daemon, however many bottles it
 * watches: whether it answers. Subscribers are told when it stops answering
 * and when it answers again, once per change; each watch listens here instead
 * of asking the daemon itself, and the worker reconciles its host on each return.
 * The first answer after start is no return: the worker reconciled at start.
 */
export class DaemonProbe implements DaemonLiveness {
  private readonly listeners = new Set<(answering: boolean) => void>();
  private answering: boolean | undefined;
  /** An effect found the daemon away although the last ask was answered: its next answer is a return. */
  private returnAwaited = false;
  private timer: NodeJS.Timeout | undefined;
  private asking: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly reachable: () => Promise<boolean>,
    private readonly timing: DaemonProbeTiming = DEFAULT_TIMING,
  ) {}

  start(): void {
    if (!this.stopped && !this.timer) this.schedule();
  }

  subscribe(listener: (answering: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  lost(stop: AbortSignal): Promise<never> {
    return new Promise<never>((_resolve, reject) => {
      if (stop.aborted) return;
      const unsubscribe = this.subscribe((answering) => {
        if (answering) return;
        unsubscribe();
        reject(new DaemonNotAnswering());
      });
      stop.addEventListener('abort', unsubscribe, { once: true });
    });
  }

  /**
   * An effect found the daemon away: its next answer counts as a return, and is
   * asked for sooner. Says whether this is news (the probe had not found it away).
   */
  away(): boolean {
    if (this.answering === false || this.returnAwaited) return false;
    this.returnAwaited = true;
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.asking;
  }

  private schedule(): void {
    const waiting = this.answering === false || this.returnAwaited;
    this.timer = setTimeout(
      () => {
        this.asking = this.ask().finally(() => {
          this.asking = undefined;
          if (!this.stopped) this.schedule();
        });
      },
      waiting ? this.timing.awayMs : this.timing.answeringMs,
    );
    this.timer.unref();
  }

  private async ask(): Promise<void> {
    const answers = await this.reachable().catch(() => false);
    if (this.stopped) return;
    const before = this.answering;
    const returned = answers && (before === false || this.returnAwaited);
    this.answering = answers;
    if (answers) this.returnAwaited = false;
    if (returned || (!answers && before !== false)) this.tell(answers);
  }

  private tell(answering: boolean): void {
    for (const listener of [...this.listeners]) listener(answering);
  }
}
