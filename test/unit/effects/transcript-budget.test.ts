import { describe, expect, it } from 'vitest';
import {
  FREE_SPACE_KEPT_BYTES,
  MAX_SKIPPED_NAMED,
  sizeInBytes,
  SnapshotWontFit,
  TranscriptBudget,
} from '../../../src/effects/transcript-budget.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const plentyFree = 100 * GiB;

describe('the transcript snapshot budget', () => {
  it('reads the limit as the manifest writes sizes', () => {
    expect(sizeInBytes('256m')).toBe(256 * MiB);
    expect(sizeInBytes('1G')).toBe(GiB);
    expect(sizeInBytes('512k')).toBe(512 * 1024);
    expect(sizeInBytes('0m')).toBeUndefined();
    expect(sizeInBytes('1.5g')).toBeUndefined();
  });

  it('copies files while the snapshot stays within the limit, and skips one that would take it over', () => {
    const budget = new TranscriptBudget(256 * MiB, plentyFree);
    expect(budget.admit('projects/a.jsonl', 100 * MiB)).toBe(true);
    expect(budget.admit('big.jsonl', GiB)).toBe(false);
    expect(budget.admit('projects/b.jsonl', 150 * MiB)).toBe(true);
    expect(budget.admit('projects/c.jsonl', 7 * MiB)).toBe(false);
    expect(budget.admit('empty', 0)).toBe(true);
    expect(budget.skipped).toEqual([
      { path: 'big.jsonl', bytes: GiB },
      { path: 'projects/c.jsonl', bytes: 7 * MiB },
    ]);
    expect(budget.skippedCount).toBe(2);
    expect(budget.skippedBytes).toBe(GiB + 7 * MiB);
  });

  it('names only the first skipped files and counts the rest', () => {
    const budget = new TranscriptBudget(MiB, plentyFree);
    for (let i = 0; i < 500; i++) expect(budget.admit(`f${i}`, 2 * MiB)).toBe(false);
    expect(budget.skipped).toHaveLength(MAX_SKIPPED_NAMED);
    expect(budget.skippedCount).toBe(500);
  });

  it('fails, rather than skip, a file within the limit the host has no room for, keeping some space free', () => {
    const budget = new TranscriptBudget(256 * MiB, FREE_SPACE_KEPT_BYTES + 10 * MiB);
    expect(budget.admit('a.jsonl', 10 * MiB)).toBe(true);
    expect(() => budget.admit('b.jsonl', 1)).toThrow(SnapshotWontFit);
    expect(() => budget.admit('b.jsonl', 1)).toThrow(/not enough for b\.jsonl \(1 bytes\)/);
  });

  it('skips a file over the limit even when the host has no room for it either', () => {
    const budget = new TranscriptBudget(256 * MiB, FREE_SPACE_KEPT_BYTES);
    expect(budget.admit('big.jsonl', GiB)).toBe(false);
  });
});
