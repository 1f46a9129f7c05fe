import { readFileSync } from 'node:fs';
import { budgetSpent, budgetState, type BudgetState } from '../shared/budget.js';
import { addUsage, ZERO_USAGE, type UsageByModel } from '../shared/token-usage.js';
import type { GatewayConfig } from './config.js';
import { BudgetFileSchema } from './protocol.js';
import type { MessageUsage } from './usage-reader.js';

/**
 * Adds up the usage of the responses the credential proxy forwards and reports it as usage lines:
 * at most one per interval, so a busy agent costs the event log a bounded number of events, plus
 * one at once when the budget crosses a threshold (so the log, and the operator, learn it without
 * waiting) and one when the gateway stops. It also answers whether the budget is spent.
 */
export interface UsageMeterOptions {
  /** Writes one usage line (DecisionLog.usage). */
  emit: (models: UsageByModel) => void;
  /** Says the gateway took in a raised limit (a `budget_set` line). */
  budgetSet: (limit: number) => void;
  budget: GatewayConfig['budget'];
  intervalMs: number;
  /** Where the worker writes a raised limit (protocol.ts GATEWAY_BUDGET_PATH). */
  budgetFile?: string;
  log: (message: string) => void;
}

/** How often usage lines may be written. */
export const USAGE_LINE_INTERVAL_MS = 10_000;

export class UsageMeter {
  private pending: UsageByModel = {};
  private hasPending = false;
  /** This run's usage, for the budget (earlier runs' spending is in the config). */
  private run: UsageByModel = {};
  private timer: NodeJS.Timeout | undefined;
  private limit: number | undefined;
  private state: BudgetState = 'ok';

  constructor(private readonly opts: UsageMeterOptions) {
    this.limit = opts.budget?.limit;
    this.state = this.currentState();
  }

  record(usage: MessageUsage): void {
    const { model, ...counts } = usage;
    const delta = { ...counts, calls: 1 };
    this.pending[model] = addUsage(this.pending[model] ?? ZERO_USAGE, delta);
    this.run[model] = addUsage(this.run[model] ?? ZERO_USAGE, delta);
    this.hasPending = true;
    const state = this.currentState();
    if (state !== this.state) {
      this.state = state;
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => this.flush(), this.opts.intervalMs);
    this.timer.unref?.();
  }

  /** Whether Messages API calls are refused: the budget is spent. */
  exhausted(): boolean {
    return this.state === 'exhausted';
  }

  /** What is spent and allowed, in the budget's unit; undefined without a budget. */
  standing(): { spent: number; limit: number; unit: 'tokens' | 'usd' } | undefined {
    const budget = this.opts.budget;
    if (!budget || this.limit === undefined) return undefined;
    return { spent: budget.spent + budgetSpent(this.run, budget), limit: this.limit, unit: budget.unit };
  }

  /** Writes what was recorded since the last line, if anything. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.hasPending) return;
    const models = this.pending;
    this.pending = {};
    this.hasPending = false;
    this.opts.emit(models);
  }

  /** Takes in a raised limit the worker wrote; a missing or malformed file changes nothing. */
  reloadBudget(): void {
    if (!this.opts.budgetFile || !this.opts.budget) return;
    let text: string;
    try {
      text = readFileSync(this.opts.budgetFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log(`reading the budget failed: ${String(err)}`);
      return;
    }
    let parsed;
    try {
      parsed = BudgetFileSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.opts.log('the budget file is malformed; the limit is unchanged');
      return;
    }
    this.limit = parsed.data.limit;
    this.state = this.currentState();
    this.opts.budgetSet(this.limit);
  }

  close(): void {
    this.flush();
  }

  private currentState(): BudgetState {
    const standing = this.standing();
    return standing ? budgetState(standing.spent, standing.limit) : 'ok';
  }
}
