/**
 * One token bucket for the whole gateway: a bottle gets `requestsPerMinute`
 * requests as a burst and then that many per minute, refilled continuously.
 * The clock is injectable so the limiter is tested without waiting.
 */
export class TokenBucket {
  private tokens: number;
  private lastRefill: number;
  private readonly refillPerMs: number;

  constructor(
    private readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(capacity > 0)) throw new RangeError('requests per minute must be positive');
    this.tokens = capacity;
    this.lastRefill = now();
    this.refillPerMs = capacity / 60_000;
  }

  /** Spends one token if there is one; false means "over the limit, refuse". */
  tryTake(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.lastRefill) * this.refillPerMs);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
