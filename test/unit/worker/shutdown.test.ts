import { DelayedError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { Shutdown } from '../../../src/worker/shutdown.js';
import { fakeJob } from './fake-job.js';

describe("a worker's shutdown", () => {
  it('aborts every running effect once it begins', () => {
    const shutdown = new Shutdown();
    const effects = Array.from({ length: 20 }, () => new AbortController());
    effects.forEach((effect) => shutdown.abortOnStop(effect));
    expect(shutdown.begun).toBe(false);
    shutdown.begin();
    expect(shutdown.begun).toBe(true);
    expect(effects.every((effect) => effect.signal.aborted)).toBe(true);
  });

  it('leaves an effect that ended before it alone', () => {
    const shutdown = new Shutdown();
    const effect = new AbortController();
    const stopListening = shutdown.abortOnStop(effect);
    stopListening();
    shutdown.begin();
    expect(effect.signal.aborted).toBe(false);
  });

  it('hands a job back to the queue under its lock, for BullMQ to take as moved', async () => {
    const shutdown = new Shutdown();
    const { job, delays } = fakeJob();
    const before = Date.now();
    await expect(shutdown.handBack(job, 'tok')).rejects.toBeInstanceOf(DelayedError);
    expect(delays).toHaveLength(1);
    expect(delays[0].token).toBe('tok');
    expect(delays[0].until).toBeGreaterThanOrEqual(before);
    expect(delays[0].until).toBeLessThan(before + 5000);
  });
});
