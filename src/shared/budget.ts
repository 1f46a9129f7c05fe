import { z } from 'zod';
import { budgetCost, PriceTableSchema } from './prices.js';
import { totalTokensByModel, type UsageByModel } from './token-usage.js';

/**
 * A bottle's spending limit (manifest `limits.budget`, `bottle start --budget`): tokens (every token
 * read or written, cache included) or USD (at the prices fixed when the bottle started). The gateway
 * refuses Messages API calls once it is spent; the machine derives the same state from the log.
 */
export const BUDGET_UNITS = ['tokens', 'usd'] as const;
export type BudgetUnit = (typeof BUDGET_UNITS)[number];

export const BudgetSchema = z
  .object({
    unit: z.enum(BUDGET_UNITS),
    limit: z.number().nonnegative().finite(),
    /** A USD budget's prices, fixed at start so every reader (gateway, replay) counts the same. */
    prices: PriceTableSchema.optional(),
  })
  .strict();
export type Budget = z.infer<typeof BudgetSchema>;

export const BUDGET_STATES = ['ok', 'warning', 'exhausted'] as const;
export type BudgetState = (typeof BUDGET_STATES)[number];

/** The share of the budget past which the operator is told. */
export const BUDGET_WARNING_SHARE = 0.8;

/** What `usage` spends of a budget of this unit, in that unit. */
export function budgetSpent(usage: UsageByModel, budget: Pick<Budget, 'unit' | 'prices'>): number {
  return budget.unit === 'tokens' ? totalTokensByModel(usage) : budgetCost(usage, budget.prices ?? {});
}

export function budgetState(spent: number, limit: number): BudgetState {
  if (spent >= limit) return 'exhausted';
  return spent >= limit * BUDGET_WARNING_SHARE ? 'warning' : 'ok';
}

/** "1,000 tokens" / "$2.50" */
export function formatBudgetAmount(amount: number, unit: BudgetUnit): string {
  return unit === 'tokens' ? `${Math.round(amount).toLocaleString('en-US')} tokens` : `$${amount.toFixed(2)}`;
}

/** `N` (tokens) or `Nusd` / `$N` (USD), as `--budget` and `bottle budget --add` take it; undefined when malformed. */
export function parseBudgetAmount(text: string): { unit: BudgetUnit; amount: number } | undefined {
  const m = /^\s*(\$)?([0-9]+(?:\.[0-9]+)?)\s*(usd|tokens)?\s*$/i.exec(text);
  if (!m) return undefined;
  const amount = Number(m[2]);
  if (!Number.isFinite(amount) || amount <= 0) return undefined;
  const usd = m[1] === '$' || m[3]?.toLowerCase() === 'usd';
  if (m[1] === '$' && m[3]?.toLowerCase() === 'tokens') return undefined;
  if (!usd && !Number.isInteger(amount)) return undefined;
  return { unit: usd ? 'usd' : 'tokens', amount };
}
