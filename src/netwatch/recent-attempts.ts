/**
 * Remembers attempts for a short while, so one connection's retransmitted
 * opening packets are reported once. Bounded: under a flood the oldest are
 * forgotten first, and the gateway's own budget bounds what is recorded.
 */
export class RecentAttempts {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly capacity: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** True the first time `key` is seen within the window. */
  isNew(key: string): boolean {
    const now = this.now();
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    this.seen.delete(key);
    this.seen.set(key, now);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value as string);
    return true;
  }
}
