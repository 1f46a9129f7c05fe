import type { Command } from 'commander';
import { bottleStatus, isTerminal, stateName, type BottleState } from '../../machines/index.js';
import { liveWorkers } from '../../engine/workers.js';
import type { CliIO } from '../../shared/io.js';
import { currentState } from '../../engine/bottle-log.js';
import { openSession } from '../session.js';
import { terminalSafeJson, visibleText } from '../../shared/visible-text.js';
import { tableLines } from '../table.js';
import { formatOption, type CliContext } from '../program.js';

export interface ListedBottle {
  identity: string;
  agent: string;
  bottle: string;
  state: string;
  host: string;
  started_at: string;
}

export interface ListOptions {
  all: boolean;
  format: 'text' | 'json';
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('list')
    .description('bottles and their current state')
    .option('--all', 'include cleaned bottles', false)
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
        state: (waiting ? `${bottleStatus(live)} (waiting for host ${host})` : bottleStatus(live)) + alarmMark(live),
        host,
        started_at: entry.started_at,
      });
    }
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
    const header = ['IDENTITY', 'AGENT', 'BOTTLE', 'STATE', 'HOST', 'STARTED'];
    const cells = (r: ListedBottle) => [r.identity, r.agent, r.bottle, r.state, r.host, r.started_at];
    for (const line of tableLines(header, rows.map(cells))) io.stdout(line);
    return 0;
  } finally {
    await session.close();
  }
}

/** A canary seen leaving (egress.alarm) is marked on the bottle's row until the bottle is gone. */
function alarmMark(live: BottleState): string {
  const alarm = live.context.alarm;
  return alarm ? ` ALARM (${alarm.count} canary, latest ${alarm.rule} to ${visibleText(alarm.host)})` : '';
}
