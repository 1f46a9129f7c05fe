/**
 * A token bucket: `capacity` requests as a burst, then `capacity` per window
 * (a minute unless given), refilled continuously. The gateway keeps one for
 * all proxied requests and smaller ones of their own for capability requests
 * and recorded DNS lookups, so neither can spend the other's budget; the
 * network watch keeps one for the reports it sends. The clock is injectable
 * so the limiter is tested without waiting.
 */
export class TokenBucket {
  private tokens: number;
  private lastRefill: number;
  private readonly refillPerMs: number;

  constructor(
    private readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
    windowMs = 60_000,
  ) {
    if (!(capacity > 0)) throw new RangeError('the bucket capacity must be positive');
    if (!(windowMs > 0)) throw new RangeError('the refill window must be positive');
    this.tokens = capacity;
    this.lastRefill = now();
    this.refillPerMs = capacity / windowMs;
  }

  /** Spends one token if there is one; false means "over the limit, refuse". */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Returns a token taken for something that turned out not to be spent (a
   * request held its place while it was read, then was refused); never above
   * the capacity.
   */
  giveBack(): void {
    this.refill();
    this.tokens = Math.min(this.capacity, this.tokens + 1);
  }

  /** Whole seconds until the next token is available (0 when one is). */
  secondsUntilNext(): number {
    this.refill();
    if (this.tokens >= 1) return 0;
    // Rounded to whole milliseconds first, so float noise never adds a second.
    return Math.ceil(Math.round((1 - this.tokens) / this.refillPerMs) / 1000);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.lastRefill) * this.refillPerMs);
    this.lastRefill = now;
  }
}
