import { costByModel, type PriceTable } from '../shared/prices.js';
import { addUsage, totalTokens, ZERO_USAGE, type UsageByModel } from '../shared/token-usage.js';

/**
 * Usage grouped for `bottle usage` and `bottle list`: tokens per group and their estimated cost.
 * A model without a price adds its tokens but no cost: its group says "cost unknown" (with the
 * cost of the priced models, if any), never an estimate.
 */
export interface UsageRow {
  key: string;
  input: number;
  output: number;
  cache_creation: number;
  cache_read: number;
  calls: number;
  tokens: number;
  /** USD of the priced models; null when no model of the group has a price. */
  cost_usd: number | null;
  /** Models of the group without a price. */
  unknown_models: string[];
}

export function usageRow(key: string, usage: UsageByModel, prices: PriceTable): UsageRow {
  const sum = Object.values(usage).reduce(addUsage, ZERO_USAGE);
  const cost = costByModel(usage, prices);
  const priced = Object.entries(usage).some(([model, counts]) => !cost.unknown.includes(model) && totalTokens(counts));
  return {
    key,
    ...sum,
    tokens: totalTokens(sum),
    cost_usd: priced ? roundUsd(cost.usd) : cost.unknown.length > 0 ? null : 0,
    unknown_models: cost.unknown,
  };
}

/** Cents are what the operator reads; the figures stay exact enough to add up again. */
function roundUsd(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}

export function formatTokens(tokens: number): string {
  return tokens.toLocaleString('en-US');
}

/** "$1.23", "cost unknown", or "$1.23 + cost unknown" when some models have no price. */
export function formatCost(row: Pick<UsageRow, 'cost_usd' | 'unknown_models'>): string {
  if (row.cost_usd === null) return 'cost unknown';
  const usd = `$${row.cost_usd.toFixed(2)}`;
  return row.unknown_models.length > 0 ? `${usd} + cost unknown` : usd;
}
