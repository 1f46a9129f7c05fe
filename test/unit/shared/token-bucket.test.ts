import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../src/shared/token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst of the per-minute budget, then refuses', () => {
    const now = 0;
    const bucket = new TokenBucket(3, () => now);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
  });

  it('refills continuously at budget per minute', () => {
    let now = 0;
    const bucket = new TokenBucket(60, () => now);
    for (let i = 0; i < 60; i++) bucket.tryTake();
    expect(bucket.tryTake()).toBe(false);
    now += 999;
    expect(bucket.tryTake()).toBe(false);
    now += 1;
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
  });

  it('never saves up more than one minute of budget', () => {
    let now = 0;
    const bucket = new TokenBucket(2, () => now);
    now += 10 * 60_000;
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, false]);
  });

  it('takes back a token given back, but never holds more than its capacity', () => {
    const now = 0;
    const bucket = new TokenBucket(2, () => now);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, false]);
    bucket.giveBack();
    expect([bucket.tryTake(), bucket.tryTake()]).toEqual([true, false]);
    bucket.giveBack();
    bucket.giveBack();
    bucket.giveBack();
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, false]);
  });

  it('rejects a non-positive budget', () => {
    expect(() => new TokenBucket(0)).toThrow(RangeError);
  });
});

describe('TokenBucket with its own window', () => {
  it('refills the capacity over the window given, and says when the next token comes', () => {
    let now = 0;
    const bucket = new TokenBucket(4, () => now, 10 * 60_000);
    expect([1, 2, 3, 4, 5].map(() => bucket.tryTake())).toEqual([true, true, true, true, false]);
    expect(bucket.secondsUntilNext()).toBe(150);
    now += 149_000;
    expect(bucket.tryTake()).toBe(false);
    expect(bucket.secondsUntilNext()).toBe(1);
    now += 1_000;
    expect(bucket.secondsUntilNext()).toBe(0);
    expect(bucket.tryTake()).toBe(true);
  });

  it('rejects a non-positive window', () => {
    expect(() => new TokenBucket(1, () => 0, 0)).toThrow(RangeError);
  });
});
