import type { Command } from 'commander';
import { Option } from 'commander';
import { attentionOf, bottleStatus, stateName, type BottleState } from '../../machines/index.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import { parseIdentity } from '../../shared/identity.js';
import type { CliIO } from '../../shared/io.js';
import { attentionLine } from '../attention-line.js';
import { openSession } from '../session.js';
import { watchStates } from '../state-watch.js';
import type { CliContext } from '../program.js';

export const WAIT_CONDITIONS = ['attention', 'exit', 'running'] as const;
export type WaitCondition = (typeof WAIT_CONDITIONS)[number];

/** The exit status of a wait that ran out of time, as timeout(1) has it. */
export const WAIT_TIMED_OUT = 124;

export interface WaitOptions {
  identities: string[];
  until: WaitCondition;
  timeout?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('wait')
    .description('wait until one of the bottles needs you, has exited or is running; print which and why')
    .argument('<identity...>')
    .addOption(new Option('--until <condition>', 'what to wait for').choices([...WAIT_CONDITIONS]).default('attention'))
    .option('--timeout <seconds>', 'give up after this many seconds (exit 124)')
    .action((identities: string[], flags: Omit<WaitOptions, 'identities'>) =>
      cli.run(() => runWait({ ...flags, identities }, cli.io)),
    );
}

/** The agent's run is over: it exited (or never will run), whatever happens to the bottle next. */
const ENDED_STATES: ReadonlySet<string> = new Set([
  'snapshotting',
  'preserving',
  'preserved',
  'cleaning',
  'cleaned',
  'failing',
  'failed',
]);

/** Why the bottle meets the condition, in the line `bottle wait` prints; undefined while it does not. */
export function waitReason(state: BottleState, until: WaitCondition): string | undefined {
  if (until === 'attention') {
    const attention = attentionOf(state);
    return attention ? `attention ${attentionLine(attention)}` : undefined;
  }
  if (until === 'running') return stateName(state) === 'running' ? 'running' : undefined;
  if (!ENDED_STATES.has(stateName(state))) return undefined;
  const { exitCode, signal } = state.context;
  const how = exitCode === null ? 'never ran' : `code ${exitCode}${signal ? ` (${signal})` : ''}`;
  return `exited ${how}: ${bottleStatus(state)}`;
}

/** Bottles that can never meet the condition again (cleaned: nothing is left to run). */
function hopeless(state: BottleState, until: WaitCondition): boolean {
  return until !== 'exit' && stateName(state) === 'cleaned';
}

/**
 * `bottle wait`: returns as soon as one of the bottles meets the condition (already meeting it
 * counts), printing `<identity> <why>` on stdout. Follows the bottles' event streams; exit 124 when
 * the timeout ends the wait first, 1 when every bottle is cleaned and cannot meet it any more.
 */
export async function runWait(opts: WaitOptions, io: CliIO): Promise<number> {
  const timeoutMs = parseTimeout(opts.timeout);
  const identities = [...new Set(opts.identities.map((raw) => parseIdentity(raw).identity))];
  const session = await openSession({ needWorker: false });
  try {
    const unknown = [];
    for (const identity of identities) if (!(await session.log.exists(identity))) unknown.push(identity);
    if (unknown.length > 0)
      throw new UsageError(`no such bottle: ${unknown.join(', ')} (bottle list --all shows every bottle)`);
    const controller = new AbortController();
    const stop = () => controller.abort();
    const timer = timeoutMs === undefined ? undefined : setTimeout(stop, timeoutMs);
    process.once('SIGINT', stop);
    const gone = new Set<string>();
    let reason = '';
    try {
      const found = await watchStates(
        session.log,
        identities,
        (identity, state) => {
          const why = waitReason(state, opts.until);
          if (why !== undefined) {
            reason = `${identity} ${why}`;
            return true;
          }
          if (hopeless(state, opts.until)) {
            gone.add(identity);
            if (gone.size === identities.length) controller.abort();
          }
          return false;
        },
        controller.signal,
      );
      if (found !== undefined) {
        io.stdout(reason);
        return 0;
      }
    } finally {
      clearTimeout(timer);
      process.off('SIGINT', stop);
    }
    if (gone.size === identities.length)
      throw new RuntimeFailure(`${identities.join(', ')}: cleaned; nothing is left to wait for`);
    if (timeoutMs !== undefined) {
      io.stderr(`bottle wait: timed out after ${opts.timeout} s (${opts.until} not reached)`);
      return WAIT_TIMED_OUT;
    }
    return 130;
  } finally {
    await session.close();
  }
}

function parseTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !(seconds > 0))
    throw new UsageError(`--timeout takes a positive number of seconds, not ${JSON.stringify(raw)}`);
  return seconds * 1000;
}
