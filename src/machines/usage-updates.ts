import type { LifecycleEvent } from '../events/schema.js';
import { budgetSpent, budgetState } from '../shared/budget.js';
import { addUsageByModel, type UsageByModel } from '../shared/token-usage.js';
import type { BottleContext, BudgetStanding } from './context.js';

/**
 * What usage and budget events change in the machine's context (see context-updates.ts for the
 * pattern): totals per model over the bottle's whole history, and the budget's standing, derived
 * from those totals and the plan's budget so a replay reaches the same figures the gateway enforced.
 */

type UpdateArgs = { context: BottleContext; event: LifecycleEvent };
type Update = Partial<BottleContext>;

/** The standing for `usage` under the plan's budget; the raises so far stay, unless the unit changed. */
function standing(context: BottleContext, usage: UsageByModel, raised: number): BudgetStanding | null {
  const budget = context.plan?.limits.budget;
  if (!budget) return null;
  const spent = budgetSpent(usage, budget);
  const limit = budget.limit + raised;
  return { unit: budget.unit, limit, raised, spent, state: budgetState(spent, limit) };
}

/** A run's plan brings its budget; what earlier runs spent and the operator added still counts. */
export function takeBudget({ context }: UpdateArgs): Update {
  const previous = context.budget;
  const unit = context.plan?.limits.budget?.unit;
  const raised = previous && previous.unit === unit ? previous.raised : 0;
  return { budget: standing(context, context.usage, raised) };
}

export function recordUsage({ context, event }: UpdateArgs): Update {
  if (event.type !== 'usage.recorded') return {};
  const usage = addUsageByModel(context.usage, event.data.models);
  return {
    usage,
    budget: context.budget ? standing(context, usage, context.budget.raised) : null,
    lastEgressDecision: Math.max(context.lastEgressDecision, event.data.n),
  };
}

export function raiseBudget({ context, event }: UpdateArgs): Update {
  if (event.type !== 'budget.raised' || !context.budget) return {};
  return { budget: standing(context, context.usage, context.budget.raised + event.data.add) };
}
