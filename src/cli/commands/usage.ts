import { Option, type Command } from 'commander';
import { currentState } from '../../engine/bottle-log.js';
import { UsageError, RuntimeFailure } from '../../shared/errors.js';
import type { CliIO } from '../../shared/io.js';
import { addUsageByModel, type UsageByModel } from '../../shared/token-usage.js';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { checkIdentityArg } from '../identity-arg.js';
import { priceTable } from '../price-table.js';
import { formatOption, type CliContext } from '../program.js';
import { openSession, type Session } from '../session.js';
import { tableLines } from '../table.js';
import { formatCost, formatTokens, usageRow, type UsageRow } from '../usage-report.js';

export interface UsageOptions {
  identity?: string;
  since?: string;
  by: 'bottle' | 'agent' | 'model';
  format: 'text' | 'json';
  prices?: string;
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('usage')
    .description('tokens and estimated cost, read off the credential proxy')
    .argument('[identity]', 'one bottle (default: every bottle, cleaned ones included)')
    .option('--since <date>', 'only usage recorded at or after DATE (e.g. 2026-12-01 or an ISO time)')
    .addOption(new Option('--by <group>', 'group by').choices(['bottle', 'agent', 'model']).default('bottle'))
    .option('--prices <file>', 'price file laid over the built-in table (default $CLAUDE_BOTTLE_PRICES)')
    .addOption(formatOption())
    .action((identity: string | undefined, flags: Omit<UsageOptions, 'identity'>) =>
      cli.run(() => runUsage({ ...flags, identity, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/** A bottle's usage per model: its folded totals, or with `since` the usage.recorded events from then on. */
async function bottleUsage(session: Session, identity: string, since: number | undefined): Promise<UsageByModel> {
  if (since === undefined) return (await currentState(session.log, identity)).state.context.usage;
  let usage: UsageByModel = {};
  for (const event of await session.log.read(identity)) {
    if (event.type === 'usage.recorded' && Date.parse(event.at) >= since) {
      usage = addUsageByModel(usage, event.data.models);
    }
  }
  return usage;
}

export async function runUsage(opts: UsageOptions, io: CliIO): Promise<number> {
  const since = opts.since === undefined ? undefined : Date.parse(opts.since);
  if (since !== undefined && Number.isNaN(since)) {
    throw new UsageError(`--since ${JSON.stringify(opts.since)} is not a date (e.g. 2026-12-01 or 2026-12-01T09:00Z)`);
  }
  const prices = priceTable(opts.prices);
  const identity =
    opts.identity === undefined
      ? undefined
      : await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const session = await openSession({ needWorker: false });
  try {
    const entries = (await session.log.listBottles()).filter((e) => identity === undefined || e.identity === identity);
    if (identity !== undefined && entries.length === 0) throw new RuntimeFailure(`no such bottle: ${identity}`);
    const groups = new Map<string, UsageByModel>();
    let total: UsageByModel = {};
    for (const entry of entries) {
      const usage = await bottleUsage(session, entry.identity, since);
      total = addUsageByModel(total, usage);
      if (opts.by === 'model') {
        for (const [model, counts] of Object.entries(usage)) {
          groups.set(model, addUsageByModel(groups.get(model) ?? {}, { [model]: counts }));
        }
      } else {
        const key = opts.by === 'agent' ? entry.agent : entry.identity;
        groups.set(key, addUsageByModel(groups.get(key) ?? {}, usage));
      }
    }
    const rows = [...groups.entries()]
      .map(([key, usage]) => usageRow(key, usage, prices))
      .filter((row) => row.calls > 0 || row.tokens > 0)
      .sort((a, b) => a.key.localeCompare(b.key));
    const sum = usageRow('TOTAL', total, prices);
    if (opts.format === 'json') {
      const named = (row: UsageRow) => {
        const { key, ...rest } = row;
        return { [opts.by === 'bottle' ? 'identity' : opts.by]: key, ...rest };
      };
      const { key: _total, ...totals } = sum;
      io.stdout(terminalSafeJson({ by: opts.by, since: opts.since ?? null, rows: rows.map(named), total: totals }));
      return 0;
    }
    if (rows.length === 0) {
      io.stdout('no usage recorded (usage is read off bottles with an anthropic-base-url credential route)');
      return 0;
    }
    const header = [opts.by.toUpperCase(), 'INPUT', 'OUTPUT', 'CACHE WRITE', 'CACHE READ', 'CALLS', 'COST'];
    const cells = (r: UsageRow) => [
      r.key,
      formatTokens(r.input),
      formatTokens(r.output),
      formatTokens(r.cache_creation),
      formatTokens(r.cache_read),
      String(r.calls),
      formatCost(r),
    ];
    for (const line of tableLines(header, [...rows.map(cells), cells(sum)])) io.stdout(line);
    const unknown = sum.unknown_models;
    if (unknown.length > 0) io.stdout(`no price for ${unknown.join(', ')}: add it with --prices FILE`);
    return 0;
  } finally {
    await session.close();
  }
}
