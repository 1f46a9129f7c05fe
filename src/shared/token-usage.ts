import { z } from 'zod';

/**
 * Token counts as the Messages API reports them in a response's `usage` block, under shorter names;
 * the gateway's usage lines, the `usage.recorded` event and the machine's totals all use this shape.
 */
const Count = z.number().int().nonnegative();

export const TokenCountsSchema = z.object({
  input: Count,
  output: Count,
  /** `cache_creation_input_tokens`: prompt written to the cache (billed above the input rate). */
  cache_creation: Count,
  /** `cache_read_input_tokens`: prompt read from the cache (billed far below it). */
  cache_read: Count,
});
export type TokenCounts = z.infer<typeof TokenCountsSchema>;

/** One model's counts plus how many responses they came from. */
export const ModelUsageSchema = TokenCountsSchema.extend({ calls: Count });
export type ModelUsage = z.infer<typeof ModelUsageSchema>;

/** Usage per model name (the `model` field of the responses); names are bounded like any text from upstream. */
export const UsageByModelSchema = z.record(z.string().min(1).max(200), ModelUsageSchema);
export type UsageByModel = z.infer<typeof UsageByModelSchema>;

export const ZERO_USAGE: Readonly<ModelUsage> = Object.freeze({
  input: 0,
  output: 0,
  cache_creation: 0,
  cache_read: 0,
  calls: 0,
});

export function addUsage(a: ModelUsage, b: ModelUsage): ModelUsage {
  return {
    input: a.input + b.input,
    output: a.output + b.output,
    cache_creation: a.cache_creation + b.cache_creation,
    cache_read: a.cache_read + b.cache_read,
    calls: a.calls + b.calls,
  };
}

/** `into` plus `delta`, model by model (a new object; neither argument changes). */
export function addUsageByModel(into: UsageByModel, delta: UsageByModel): UsageByModel {
  const sum: UsageByModel = { ...into };
  for (const [model, usage] of Object.entries(delta)) sum[model] = addUsage(sum[model] ?? ZERO_USAGE, usage);
  return sum;
}

/** Every token a model read or wrote: what a token budget counts. */
export function totalTokens(usage: TokenCounts): number {
  return usage.input + usage.output + usage.cache_creation + usage.cache_read;
}

export function totalTokensByModel(usage: UsageByModel): number {
  let sum = 0;
  for (const counts of Object.values(usage)) sum += totalTokens(counts);
  return sum;
}
