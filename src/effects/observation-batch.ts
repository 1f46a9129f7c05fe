/**
 * Coalesces observations (gateway decisions) that arrive while an append is
 * in flight into the next append. A flood of requests then costs a few
 * appends instead of one per decision, so the log keeps up with the gateway.
 * Order is preserved: batches are written one at a time, oldest first. A
 * failed write is kept and reported by `flush` (never an unhandled rejection).
 */
export class ObservationBatch<T> {
  private pending: T[] = [];
  private running: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(private readonly write: (batch: T[]) => Promise<void>) {}

  push(item: T): void {
    this.pending.push(item);
    this.start();
  }

  /** Resolves once everything pushed so far is written; rejects if a write failed. */
  async flush(): Promise<void> {
    this.start();
    while (this.running) await this.running;
    if (this.failure !== undefined) throw this.failure;
  }

  private start(): void {
    if (this.running || this.failure !== undefined || this.pending.length === 0) return;
    this.running = this.drain()
      .catch((err: unknown) => {
        this.failure = err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        this.running = undefined;
      });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      await this.write(batch);
    }
  }
}
