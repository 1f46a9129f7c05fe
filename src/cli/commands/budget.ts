import type { Command } from 'commander';
import { currentState } from '../../engine/bottle-log.js';
import type { LifecycleEvent } from '../../events/schema.js';
import { accepts, bottleStatus, stateName, type Command as BottleCommand } from '../../machines/index.js';
import { formatBudgetAmount, parseBudgetAmount } from '../../shared/budget.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import type { CliIO } from '../../shared/io.js';
import { visibleText } from '../../shared/visible-text.js';
import { operator } from '../capability-decision.js';
import { checkIdentityArg } from '../identity-arg.js';
import type { CliContext } from '../program.js';
import { describeEvent } from '../render-event.js';
import { commandAndFollow, openSession } from '../session.js';

export interface BudgetOptions {
  identity: string;
  add: string;
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('budget')
    .description("raise a bottle's budget; a running bottle's next Messages API call goes through")
    .argument('<identity>')
    .requiredOption('--add <amount>', "how much to add, in the budget's unit (tokens, or USD: 5, 5usd or $5)")
    .action((identity: string, o: { add: string }) =>
      cli.run(() => runBudget({ identity, add: o.add, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/** Whether the raise has taken effect: recorded, and for a running bottle told to its gateway. */
function raiseSettled(running: boolean, ev: LifecycleEvent): boolean {
  if (!running) return ev.type === 'budget.raised';
  if (ev.type === 'budget.applied' || ev.type === 'agent.exited') return true;
  return ev.type === 'effect.failed' && ev.data.effect === 'apply_budget' && ev.data.permanent;
}

/** `bottle budget <identity> --add N`: a command event; the machine raises the limit and tells the gateway. */
export async function runBudget(opts: BudgetOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const amount = parseBudgetAmount(opts.add);
  if (!amount) throw new UsageError(`--add ${JSON.stringify(opts.add)} is not an amount (e.g. 50000 tokens, or 5usd)`);
  const session = await openSession({ needWorker: false });
  try {
    if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
    const { state: live } = await currentState(session.log, identity);
    const budget = live.context.budget;
    if (!budget) {
      throw new UsageError(`${identity} has no budget (set limits.budget in the manifest, or start with --budget)`);
    }
    // A bare number is in the budget's unit; a written unit must be the budget's.
    const written = /usd|\$|tokens/i.test(opts.add);
    if (written && amount.unit !== budget.unit) {
      throw new UsageError(`${identity}'s budget is in ${budget.unit}; --add ${visibleText(opts.add)} is not`);
    }
    if (budget.unit === 'tokens' && !Number.isInteger(amount.amount)) {
      throw new UsageError(`${identity}'s budget is in tokens: --add takes a whole number`);
    }
    const command: BottleCommand<'budget.raised'> = {
      type: 'budget.raised',
      data: { add: amount.amount, by: operator() },
    };
    if (!accepts(live, command))
      throw new RuntimeFailure(`${identity} is ${bottleStatus(live)}; its budget cannot change`);
    const running = stateName(live) === 'running';
    const end = await commandAndFollow(
      session,
      identity,
      command,
      (ev) => io.stderr(`  ${describeEvent(ev, identity)}`),
      (ev) => raiseSettled(running, ev),
      { say: (l) => io.stderr(l) },
    );
    const limit = formatBudgetAmount(budget.limit + amount.amount, budget.unit);
    const spent = formatBudgetAmount(budget.spent, budget.unit);
    if (end?.type === 'effect.failed') {
      io.stdout(`raised to ${limit}, but the running gateway was not told: ${visibleText(end.data.error)}`);
      return 1;
    }
    const where =
      end?.type === 'budget.applied' && end.data.live
        ? "the running bottle's next call goes through"
        : 'it applies from the next run';
    io.stdout(`budget raised to ${limit} (${spent} spent); ${where}`);
    return 0;
  } finally {
    await session.close();
  }
}
