import type { Command } from 'commander';
import { bottleStatus, isTerminal, stateName } from '../../machines/index.js';
import { liveWorkers } from '../../engine/workers.js';
import type { CliIO } from '../../shared/io.js';
import { currentState } from '../../engine/bottle-log.js';
import { openSession } from '../session.js';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { tableLines } from '../table.js';
import { importableFolders } from '../import-original.js';
import { hostname } from 'node:os';
import { formatOption, type CliContext } from '../program.js';

export interface ListedBottle {
  identity: string;
  agent: string;
  bottle: string;
  state: string;
  host: string;
  started_at: string;
  /** Published on the host while it runs, `address:host_port->bottle_port`. */
  ports: string[];
}

export interface ListOptions {
  all: boolean;
  format: 'text' | 'json';
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('list')
    .description('bottles and their current state')
    .option('--all', "include cleaned bottles and the original tool's importable state folders", false)
    .addOption(formatOption())
    .action((flags: ListOptions) => cli.run(() => runList(flags, cli.io)));
}

/**
 * Every bottle not cleaned by default (failed and preserved ones wait for a resume); `--all` includes
 * cleaned ones. Reads only the event log's index and live states.
 */
export async function runList(opts: ListOptions, io: CliIO): Promise<number> {
  const session = await openSession({ needWorker: false });
  try {
    const rows: ListedBottle[] = [];
    const servedHosts = new Set((await liveWorkers(session.redis)).map((w) => w.hostId));
    for (const entry of await session.log.listBottles()) {
      const { state: live, lastSeq } = await currentState(session.log, entry.identity);
      if (lastSeq === 0) continue;
      if (!opts.all && stateName(live) === 'cleaned') continue;
      const host = live.context.plan?.host ?? entry.host;
      // A bottle that still has effects to run waits for its own host; no other host adopts it.
      const waiting = !isTerminal(live) && stateName(live) !== 'preserved' && !servedHosts.has(host);
      rows.push({
        identity: entry.identity,
        agent: entry.agent,
        bottle: entry.bottle,
        state: waiting ? `${bottleStatus(live)} (waiting for host ${host})` : bottleStatus(live),
        host,
        started_at: entry.started_at,
        ports: live.context.ports.map((p) => `${p.address}:${p.host_port}->${p.bottle_port}`),
      });
    }
    if (opts.all) rows.push(...importableRows(new Set(rows.map((r) => r.identity))));
    if (opts.format === 'json') {
      io.stdout(terminalSafeJson(rows));
      return 0;
    }
    if (rows.length === 0) {
      io.stdout(
        opts.all ? 'no bottles' : 'no live, preserved or failed bottles (bottle list --all shows cleaned ones)',
      );
      return 0;
    }
    const header = ['IDENTITY', 'AGENT', 'BOTTLE', 'STATE', 'HOST', 'STARTED', 'PORTS'];
    const cells = (r: ListedBottle) => [
      r.identity,
      r.agent,
      r.bottle,
      r.state,
      r.host,
      r.started_at,
      r.ports.join(', ') || '-',
    ];
    for (const line of tableLines(header, rows.map(cells))) io.stdout(line);
    return 0;
  } finally {
    await session.close();
  }
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
  }));
}
