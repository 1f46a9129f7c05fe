import { readFileSync } from 'node:fs';
import { UsageError } from '../shared/errors.js';
import { BUILTIN_PRICES, mergePrices, PriceFileSchema, type PriceTable } from '../shared/prices.js';

/** The environment variable naming the operator's price file. */
export const PRICES_ENV = 'CLAUDE_BOTTLE_PRICES';

/**
 * The prices reports and USD budgets use: the built-in table with the operator's file laid over it
 * (`--prices FILE`, else `CLAUDE_BOTTLE_PRICES`). A file that cannot be read or does not match
 * `{ "prices": { MODEL: { input, output, cache_creation, cache_read, as_of, source } } }` is a usage error.
 */
export function priceTable(path: string | undefined = process.env[PRICES_ENV] || undefined): PriceTable {
  if (!path) return { ...BUILTIN_PRICES };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const why = err instanceof SyntaxError ? 'is not valid JSON' : `cannot be read (${(err as Error).message})`;
    throw new UsageError(`the price file ${path} ${why}`);
  }
  const parsed = PriceFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    throw new UsageError(
      `the price file ${path}: ${where}: ${issue?.message ?? 'invalid'} ` +
        '(expected {"prices": {MODEL: {input, output, cache_creation, cache_read, as_of, source}}}, USD per million)',
    );
  }
  return mergePrices(BUILTIN_PRICES, parsed.data.prices);
}
