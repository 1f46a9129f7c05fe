import { describe, expect, it } from 'vitest';
import { formatCost, usageRow } from '../../../src/cli/usage-report.js';
import { BUILTIN_PRICES } from '../../../src/shared/prices.js';

const counts = (input: number, output: number, cache_creation: number, cache_read: number, calls: number) => ({
  input,
  output,
  cache_creation,
  cache_read,
  calls,
});

describe('usage rows', () => {
  it('sum every model of a group exactly and cost the priced ones', () => {
    const row = usageRow(
      'dev-a1b2c',
      {
        'claude-sonnet-4-5-20250929': counts(1000, 2000, 3000, 4000, 3),
        'claude-haiku-4-5': counts(10, 20, 30, 40, 1),
      },
      BUILTIN_PRICES,
    );
    expect(row).toMatchObject({ input: 1010, output: 2020, cache_creation: 3030, cache_read: 4040, calls: 4 });
    expect(row.tokens).toBe(10100);
    const usd = (1000 * 3 + 2000 * 15 + 3000 * 3.75 + 4000 * 0.3 + 10 * 1 + 20 * 5 + 30 * 1.25 + 40 * 0.1) / 1e6;
    expect(row.cost_usd).toBeCloseTo(usd, 5);
    expect(row.unknown_models).toEqual([]);
  });

  it('say "cost unknown" for a model without a price, never an estimate', () => {
    const unknown = usageRow('m', { 'claude-future-9': counts(5, 5, 0, 0, 1) }, BUILTIN_PRICES);
    expect(unknown.cost_usd).toBeNull();
    expect(formatCost(unknown)).toBe('cost unknown');
    const mixed = usageRow(
      'm',
      { 'claude-future-9': counts(5, 5, 0, 0, 1), 'claude-haiku-4-5': counts(1_000_000, 0, 0, 0, 1) },
      BUILTIN_PRICES,
    );
    expect(formatCost(mixed)).toBe('$1.00 + cost unknown');
    expect(mixed.unknown_models).toEqual(['claude-future-9']);
  });
});
