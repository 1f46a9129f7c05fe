import { describe, expect, it } from 'vitest';
import { budgetSpent, budgetState, parseBudgetAmount } from '../../../src/shared/budget.js';
import {
  BUILTIN_PRICES,
  budgetCost,
  costByModel,
  PriceFileSchema,
  priceFor,
  PriceTableSchema,
} from '../../../src/shared/prices.js';

const counts = (input: number, output: number, cache_creation = 0, cache_read = 0) => ({
  input,
  output,
  cache_creation,
  cache_read,
  calls: 1,
});

describe('price table', () => {
  it('is valid, and every entry names its date and source', () => {
    expect(PriceTableSchema.safeParse(BUILTIN_PRICES).success).toBe(true);
    for (const price of Object.values(BUILTIN_PRICES)) expect(price.source).toMatch(/^https:\/\//);
  });

  it('prices a dated model name by its entry, and only a date suffix', () => {
    expect(priceFor('claude-sonnet-4-5-20250929', BUILTIN_PRICES)).toBe(BUILTIN_PRICES['claude-sonnet-4-5']);
    expect(priceFor('claude-sonnet-4-5', BUILTIN_PRICES)).toBe(BUILTIN_PRICES['claude-sonnet-4-5']);
    expect(priceFor('claude-sonnet-4-5-preview', BUILTIN_PRICES)).toBeUndefined();
    expect(priceFor('claude-opus-4-5-20251101', BUILTIN_PRICES)?.input).toBe(5);
    expect(priceFor('claude-opus-4-20250514', BUILTIN_PRICES)?.input).toBe(15);
  });

  it('costs known models and names the unknown ones instead of guessing', () => {
    const usage = { 'claude-sonnet-4-5': counts(1_000_000, 100_000, 1_000_000, 1_000_000), 'mystery-9': counts(5, 5) };
    const report = costByModel(usage, BUILTIN_PRICES);
    expect(report.usd).toBeCloseTo(3 + 1.5 + 3.75 + 0.3, 10);
    expect(report.unknown).toEqual(['mystery-9']);
  });

  it('lets a USD budget count an unpriced model at the dearest rates, so the budget holds', () => {
    const table = { a: { ...BUILTIN_PRICES['claude-haiku-4-5'] }, b: { ...BUILTIN_PRICES['claude-opus-4-1'] } };
    expect(budgetCost({ unknown: counts(1_000_000, 0) }, table)).toBe(15);
  });

  it('takes an operator file of the same shape and refuses a malformed one', () => {
    const file = { prices: { 'my-model': { ...BUILTIN_PRICES['claude-haiku-4-5'], input: 2 } } };
    expect(PriceFileSchema.safeParse(file).success).toBe(true);
    expect(PriceFileSchema.safeParse({ prices: { 'my-model': { input: -1 } } }).success).toBe(false);
  });
});

describe('budget', () => {
  it('spends every token for a tokens budget, and USD at the given prices', () => {
    const usage = { 'claude-sonnet-4-5': counts(100, 200, 300, 400) };
    expect(budgetSpent(usage, { unit: 'tokens' })).toBe(1000);
    expect(budgetSpent(usage, { unit: 'usd', prices: BUILTIN_PRICES })).toBeCloseTo(
      (100 * 3 + 200 * 15 + 300 * 3.75 + 400 * 0.3) / 1e6,
      12,
    );
  });

  it('warns from 80 % and is exhausted at 100 %', () => {
    expect(budgetState(79, 100)).toBe('ok');
    expect(budgetState(80, 100)).toBe('warning');
    expect(budgetState(100, 100)).toBe('exhausted');
  });

  it('parses amounts as --budget takes them', () => {
    expect(parseBudgetAmount('50000')).toEqual({ unit: 'tokens', amount: 50000 });
    expect(parseBudgetAmount('5usd')).toEqual({ unit: 'usd', amount: 5 });
    expect(parseBudgetAmount('$2.50')).toEqual({ unit: 'usd', amount: 2.5 });
    for (const bad of ['', '0', '-5', '1.5', 'abc', '$5tokens']) expect(parseBudgetAmount(bad)).toBeUndefined();
  });
});
