import { z } from 'zod';
import { totalTokens, type TokenCounts, type UsageByModel } from './token-usage.js';

/**
 * What each model's tokens cost, in USD per million tokens, as Anthropic publishes them; each entry
 * says where and when its figures were read. A model that is not here has no cost: reports show its
 * tokens and "cost unknown", never an estimate. The operator can replace or add entries with a file
 * of the same shape (PriceFileSchema; `CLAUDE_BOTTLE_PRICES` or `--prices`).
 */
const PerMillion = z.number().nonnegative().finite();

export const PriceSchema = z
  .object({
    input: PerMillion,
    output: PerMillion,
    /** Writing the prompt cache (the five-minute cache, which Claude Code uses). */
    cache_creation: PerMillion,
    /** Reading the prompt cache. */
    cache_read: PerMillion,
    /** When the figures were read (YYYY-MM-DD). */
    as_of: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    /** Where they were read. */
    source: z.string().min(1).max(500),
  })
  .strict();
export type Price = z.infer<typeof PriceSchema>;

/** A model name as the API reports it, without its date suffix ("claude-sonnet-4-5" for its dated names). */
const ModelKeySchema = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,99}$/, 'a model name such as "claude-sonnet-4-5"');

export const PriceTableSchema = z.record(ModelKeySchema, PriceSchema);
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** The operator's price file: entries that replace or add to the built-in table. */
export const PriceFileSchema = z.object({ prices: PriceTableSchema }).strict();

const PRICING_PAGE = 'https://platform.claude.com/docs/en/about-claude/pricing';
const PRICING_PAGE_OLDER = 'https://docs.anthropic.com/en/docs/about-claude/pricing';
const READ_ON = '2026-12-07';

function price(input: number, cacheCreation: number, cacheRead: number, output: number, source = PRICING_PAGE): Price {
  return { input, output, cache_creation: cacheCreation, cache_read: cacheRead, as_of: READ_ON, source };
}

/** Anthropic's published prices ("Model pricing": base input, 5m cache writes, cache hits, output). */
export const BUILTIN_PRICES: Readonly<PriceTable> = Object.freeze({
  'claude-opus-4-6': price(5, 6.25, 0.5, 25),
  'claude-opus-4-7': price(5, 6.25, 0.5, 25),
  'claude-opus-4-5': price(5, 6.25, 0.5, 25),
  'claude-opus-4-1': price(15, 18.75, 1.5, 75),
  'claude-opus-4-0': price(15, 18.75, 1.5, 75),
  'claude-opus-4': price(15, 18.75, 1.5, 75),
  'claude-sonnet-4-6': price(3, 3.75, 0.3, 15),
  'claude-sonnet-4-5': price(3, 3.75, 0.3, 15),
  'claude-sonnet-4-0': price(3, 3.75, 0.3, 15, PRICING_PAGE_OLDER),
  'claude-sonnet-4': price(3, 3.75, 0.3, 15, PRICING_PAGE_OLDER),
  'claude-3-7-sonnet': price(3, 3.75, 0.3, 15, PRICING_PAGE_OLDER),
  'claude-haiku-4-5': price(1, 1.25, 0.1, 5),
  'claude-3-5-haiku': price(0.8, 1, 0.08, 4, PRICING_PAGE_OLDER),
  'claude-3-haiku': price(0.25, 0.3, 0.03, 1.25, PRICING_PAGE_OLDER),
});

/** The built-in table with the operator's entries laid over it. */
export function mergePrices(base: PriceTable, override: PriceTable | undefined): PriceTable {
  return { ...base, ...(override ?? {}) };
}

const DATE_SUFFIX = /^-\d{8}$/;

/** The model's price: its own entry, or the entry its name is with a date suffix; undefined when unknown. */
export function priceFor(model: string, table: PriceTable): Price | undefined {
  if (Object.prototype.hasOwnProperty.call(table, model)) return table[model];
  const dash = model.length - 9;
  if (dash > 0 && DATE_SUFFIX.test(model.slice(dash))) {
    const base = model.slice(0, dash);
    if (Object.prototype.hasOwnProperty.call(table, base)) return table[base];
  }
  return undefined;
}

/** USD for `usage` at `price`. */
export function costOf(usage: TokenCounts, p: Pick<Price, 'input' | 'output' | 'cache_creation' | 'cache_read'>) {
  return (
    (usage.input * p.input +
      usage.output * p.output +
      usage.cache_creation * p.cache_creation +
      usage.cache_read * p.cache_read) /
    1_000_000
  );
}

export interface CostReport {
  /** USD of the models with a price. */
  usd: number;
  /** Models without one: their tokens are not in `usd`. */
  unknown: string[];
}

export function costByModel(usage: UsageByModel, table: PriceTable): CostReport {
  let usd = 0;
  const unknown: string[] = [];
  for (const [model, counts] of Object.entries(usage)) {
    if (totalTokens(counts) === 0) continue;
    const p = priceFor(model, table);
    if (p) usd += costOf(counts, p);
    else unknown.push(model);
  }
  return { usd, unknown: unknown.sort() };
}

/**
 * What a USD budget charges a model that has no price: the dearest rate of the table for each kind
 * of token, so a budget holds whatever the agent calls. Reports still say "cost unknown" for it.
 */
export function ceilingPrice(table: PriceTable): Pick<Price, 'input' | 'output' | 'cache_creation' | 'cache_read'> {
  const entries = Object.values(table);
  const max = (pick: (p: Price) => number) => entries.reduce((m, p) => Math.max(m, pick(p)), 0);
  return {
    input: max((p) => p.input),
    output: max((p) => p.output),
    cache_creation: max((p) => p.cache_creation),
    cache_read: max((p) => p.cache_read),
  };
}

/** USD a budget counts for `usage`: priced models at their price, the others at the ceiling. */
export function budgetCost(usage: UsageByModel, table: PriceTable): number {
  let usd = 0;
  let ceiling: ReturnType<typeof ceilingPrice> | undefined;
  for (const [model, counts] of Object.entries(usage)) {
    const p = priceFor(model, table) ?? (ceiling ??= ceilingPrice(table));
    usd += costOf(counts, p);
  }
  return usd;
}
