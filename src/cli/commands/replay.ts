import type { Command } from 'commander';
import { bottleStatus, foldHistory, statesEqual } from '../../machines/index.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import { checkIdentityArg } from '../identity-arg.js';
import type { CliIO } from '../../shared/io.js';
import { openSession } from '../session.js';
import { formatOption, type CliContext } from '../program.js';

export interface ReplayOptions {
  identity: string;
  to?: string;
  format: 'text' | 'json';
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('replay')
    .description('fold the event log through the machine (no effects) and compare with the live state')
    .argument('<identity>')
    .option('--to <seq>', 'fold only events up to this seq')
    .addOption(formatOption())
    .action((identity: string, flags: Pick<ReplayOptions, 'to' | 'format'>) =>
      cli.run(() => runReplay({ ...flags, identity, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/**
 * Folds the stored log through the machine — no effect runs — and compares
 * the result with the live state the worker cached. `--to SEQ` folds a prefix
 * (then `matches` compares against nothing live and is only true at the end).
 */
export async function runReplay(opts: ReplayOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  let to: number | undefined;
  if (opts.to !== undefined) {
    to = Number(opts.to);
    if (!Number.isInteger(to) || to < 1)
      throw new UsageError(`--to must be a positive event number, got ${JSON.stringify(opts.to)}`);
  }
  const session = await openSession({ needWorker: false });
  try {
    if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no events for ${identity}: no such bottle`);
    const events = await session.log.read(identity, 1, to);
    const { state } = foldHistory(identity, events);
    const live = await session.log.liveState(identity);
    const lastSeq = await session.log.lastSeq(identity);
    const complete = to === undefined || to >= lastSeq;
    const matches = complete && live !== null && statesEqual(state, live);
    if (opts.format === 'json') {
      io.stdout(
        JSON.stringify({
          identity,
          state: bottleStatus(state),
          events: events.length,
          matches,
          live_state: live ? bottleStatus(live) : null,
          last_seq: lastSeq,
        }),
      );
    } else {
      io.stdout(
        `${identity}: folded ${events.length} event(s)${complete ? '' : ` of ${lastSeq}`} -> ${bottleStatus(state)}`,
      );
      io.stdout(`live state: ${live ? bottleStatus(live) : '(none)'}; ${comparison(complete, matches)}`);
    }
    return complete && !matches ? 1 : 0;
  } finally {
    await session.close();
  }
}

function comparison(complete: boolean, matches: boolean): string {
  if (!complete) return 'partial replay, not compared';
  return matches ? 'replay matches the live state' : 'replay DIFFERS from the live state';
}
