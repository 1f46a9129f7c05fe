import { describe, expect, it } from 'vitest';
import { ObservationBatch } from '../../../src/effects/observation-batch.js';

describe('ObservationBatch', () => {
  it('coalesces items pushed during a write into the next write, in order', async () => {
    const writes: number[][] = [];
    let release: () => void = () => undefined;
    const batch = new ObservationBatch<number>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await new Promise<void>((r) => (release = r));
    });
    batch.push(1);
    for (let i = 2; i <= 100; i++) batch.push(i);
    release();
    await batch.flush();
    expect(writes).toEqual([[1], Array.from({ length: 99 }, (_, i) => i + 2)]);
  });

  it('flush resolves only after every pushed item is written', async () => {
    const written: number[] = [];
    const batch = new ObservationBatch<number>(async (items) => {
      await new Promise((r) => setTimeout(r, 5));
      written.push(...items);
    });
    for (let i = 0; i < 10; i++) batch.push(i);
    await batch.flush();
    expect(written).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('flush reports a failed write', async () => {
    const batch = new ObservationBatch<number>(async () => {
      throw new Error('redis down');
    });
    batch.push(1);
    await expect(batch.flush()).rejects.toThrow('redis down');
  });
});
