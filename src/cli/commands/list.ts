import type { Command } from 'commander';
import { attentionOf, bottleStatus, isTerminal, stateName, type Attention } from '../../machines/index.js';
import { liveWorkers } from '../../engine/workers.js';
import type { CliIO } from '../../shared/io.js';
import { currentState } from '../../engine/bottle-log.js';
import { openSession } from '../session.js';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { tableLines } from '../table.js';
import { attentionCell, needsYouFirst, type ShownAttention } from '../attention-line.js';
import { importableFolders } from '../import-original.js';
import { hostname } from 'node:os';
import { formatOption, type CliContext } from '../program.js';
import { priceTable } from '../price-table.js';
import { formatCost, formatTokens, usageRow } from '../usage-report.js';
import { formatBudgetAmount } from '../../shared/budget.js';
import type { BudgetStanding } from '../../machines/context.js';

export interface ListedBottle {
  identity: string;
  agent: string;
  bottle: string;
  state: string;
  host: string;
  started_at: string;
  /** Every token the Messages API reported for the bottle, all runs. */
  tokens: number;
  /** Estimated USD of the priced models; null when none has a price ("cost unknown"). */
  cost_usd: number | null;
  unknown_models: string[];
  budget: BudgetStanding | null;
  /** What the bottle needs from the operator (attention.ts), or null. */
  attention: ShownAttention | null;
  /** Published on the host while it runs, `address:host_port->bottle_port`. */
  ports: string[];
}

/** "84% of 10,000 tokens", "spent: $5.10 of $5.00"; "-" without a budget. */
function budgetCell(budget: BudgetStanding | null): string {
  if (!budget) return '-';
  const of = `${formatBudgetAmount(budget.spent, budget.unit)} of ${formatBudgetAmount(budget.limit, budget.unit)}`;
  if (budget.state === 'exhausted') return `spent: ${of}`;
  const share = budget.limit > 0 ? Math.floor((budget.spent / budget.limit) * 100) : 100;
  return `${share}% of ${formatBudgetAmount(budget.limit, budget.unit)}`;
}

export interface ListOptions {
  all: boolean;
  format: 'text' | 'json';
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('list')
    .description('bottles and their current state')
    .option('--all', "include cleaned and discarded bottles, and the original tool's importable state folders", false)
    .addOption(formatOption())
    .action((flags: ListOptions) => cli.run(() => runList(flags, cli.io)));
}

/** Bottles that are over: listed only with --all. */
const ENDED: ReadonlySet<string> = new Set(['cleaned', 'discarded']);

/**
 * Every bottle not cleaned or discarded by default (failed and preserved ones wait for a resume); `--all` includes
 * those too. Reads only the event log's index and live states.
 */
export async function runList(opts: ListOptions, io: CliIO): Promise<number> {
  const prices = priceTable();
  const session = await openSession({ needWorker: false });
  try {
    const rows: ListedBottle[] = [];
    const servedHosts = new Set((await liveWorkers(session.redis)).map((w) => w.hostId));
    for (const entry of await session.log.listBottles()) {
      const { state: live, lastSeq } = await currentState(session.log, entry.identity);
      if (lastSeq === 0) continue;
      if (!opts.all && ENDED.has(stateName(live))) continue;
      const host = live.context.plan?.host ?? entry.host;
      const usage = usageRow(entry.identity, live.context.usage, prices);
      // A bottle that still has effects to run waits for its own host; no other host adopts it.
      const waiting = !isTerminal(live) && stateName(live) !== 'preserved' && !servedHosts.has(host);
      rows.push({
        identity: entry.identity,
        agent: entry.agent,
        bottle: entry.bottle,
        state: waiting ? `${bottleStatus(live)} (waiting for host ${host})` : bottleStatus(live),
        host,
        started_at: entry.started_at,
        tokens: usage.tokens,
        cost_usd: usage.cost_usd,
        unknown_models: usage.unknown_models,
        budget: live.context.budget,
        attention: pickAttention(attentionOf(live)),
        ports: live.context.ports.map((p) => `${p.address}:${p.host_port}->${p.bottle_port}`),
      });
    }
    if (opts.all) rows.push(...importableRows(new Set(rows.map((r) => r.identity))));
    const ordered = needsYouFirst(rows, (r) => r.attention);
    if (opts.format === 'json') {
      io.stdout(terminalSafeJson(ordered));
      return 0;
    }
    if (rows.length === 0) {
      io.stdout(
        opts.all
          ? 'no bottles'
          : 'no live, preserved or failed bottles (bottle list --all shows cleaned and discarded ones)',
      );
      return 0;
    }
    const header = [
      'IDENTITY',
      'AGENT',
      'BOTTLE',
      'STATE',
      'ATTENTION',
      'TOKENS',
      'COST',
      'BUDGET',
      'HOST',
      'STARTED',
      'PORTS',
    ];
    const cells = (r: ListedBottle) => [
      r.identity,
      r.agent,
      r.bottle,
      r.state,
      attentionCell(r.attention),
      formatTokens(r.tokens),
      r.tokens > 0 ? formatCost(r) : '-',
      budgetCell(r.budget),
      r.host,
      r.started_at,
      r.ports.join(', ') || '-',
    ];
    for (const line of tableLines(header, ordered.map(cells))) io.stdout(line);
    return 0;
  } finally {
    await session.close();
  }
}

function pickAttention(attention: Attention | undefined): ListedBottle['attention'] {
  return attention ? { kind: attention.kind, message: attention.message } : null;
}

/** State folders the original tool preserved, with no log here: `bottle resume` imports them. */
function importableRows(known: ReadonlySet<string>): ListedBottle[] {
  return importableFolders(known).map((f) => ({
    identity: f.identity,
    agent: f.agent,
    bottle: '(original)',
    state: 'importable',
    host: hostname(),
    started_at: f.started_at,
    ports: [],
    tokens: 0,
    cost_usd: null,
    unknown_models: [],
    budget: null,
    attention: null,
  }));
}
