import { parseBudgetAmount, type BudgetUnit } from '../shared/budget.js';
import { UsageError } from '../shared/errors.js';

/** `--budget N` (tokens) or `--budget Nusd` / `$N`; a malformed amount is a usage error. */
export function parseBudgetOption(text: string | undefined): { unit: BudgetUnit; amount: number } | undefined {
  if (text === undefined) return undefined;
  const amount = parseBudgetAmount(text);
  if (!amount) throw new UsageError(`--budget ${JSON.stringify(text)} is not an amount (e.g. 2000000 tokens, or 5usd)`);
  return amount;
}
