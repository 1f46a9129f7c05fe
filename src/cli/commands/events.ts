import type { Command } from 'commander';
import { RuntimeFailure } from '../../shared/errors.js';
import { checkIdentityArg } from '../identity-arg.js';
import { followUntil } from '../follow.js';
import { whileWatchingHost } from '../host-watch.js';
import type { CliIO } from '../../shared/io.js';
import { describeEvent, eventJsonLine } from '../render-event.js';
import { openSession } from '../session.js';
import { formatOption, packageVersion, type CliContext } from '../program.js';
import { isDecisionEvent, ocsfRecord } from '../egress-view/ocsf.js';
import { terminalSafeJson } from '../../shared/visible-text.js';

export interface EventsOptions {
  identity: string;
  follow: boolean;
  /** ocsf: only the egress decisions, as OCSF records (egress-view/ocsf.ts). */
  format: 'text' | 'json' | 'ocsf';
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('events')
    .description('the lifecycle event log of a bottle')
    .argument('<identity>')
    .option('--follow', 'keep printing new events', false)
    .addOption(formatOption(['text', 'json', 'ocsf']))
    .action((identity: string, flags: Pick<EventsOptions, 'follow' | 'format'>) =>
      cli.run(() => runEvents({ ...flags, identity, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/** The lifecycle event log: JSON lines with seq, type, at, data (and v), or one readable line each. */
export async function runEvents(opts: EventsOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const session = await openSession({ needWorker: false });
  const version = opts.format === 'ocsf' ? packageVersion() : '';
  const print = (ev: Parameters<typeof describeEvent>[0]) => {
    if (opts.format === 'ocsf') {
      if (isDecisionEvent(ev)) io.stdout(terminalSafeJson(ocsfRecord(ev, identity, version)));
      return;
    }
    io.stdout(
      opts.format === 'json'
        ? eventJsonLine(ev)
        : `${String(ev.seq).padStart(5)}  ${ev.at}  ${ev.type.padEnd(24)} ${describeEvent(ev, identity)}`,
    );
  };
  try {
    if (!(await session.log.exists(identity)))
      throw new RuntimeFailure(
        `no events for ${identity}: no such bottle in ` +
          (session.target.kind === 'url' ? 'REDIS_URL' : 'the embedded Redis'),
      );
    const events = await session.log.read(identity);
    events.forEach(print);
    if (!opts.follow) return 0;
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const after = events.length ? events[events.length - 1].seq : 0;
      // Events are in Redis with or without a worker; the user is told when nothing serves the bottle's host.
      await whileWatchingHost(
        session,
        identity,
        (l) => io.stderr(l),
        () => followUntil(session.log, identity, after, print, () => false, controller.signal),
      );
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  } finally {
    await session.close();
  }
}
