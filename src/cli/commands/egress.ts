import type { Command } from 'commander';
import { RuntimeFailure } from '../../shared/errors.js';
import type { CliIO } from '../../shared/io.js';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { EgressFold } from '../egress-view/fold.js';
import { egressTextLines } from '../egress-view/render.js';
import { followUntil } from '../follow.js';
import { whileWatchingHost } from '../host-watch.js';
import { checkIdentityArg } from '../identity-arg.js';
import { formatOption, type CliContext } from '../program.js';
import { openSession } from '../session.js';

export interface EgressOptions {
  identity: string;
  follow: boolean;
  format: 'text' | 'json';
  manifestPath?: string;
}

/** While following, a burst of events redraws once, this long after its first event. */
const REDRAW_DELAY_MS = 500;
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export function register(program: Command, cli: CliContext): void {
  program
    .command('egress')
    .description("what a bottle's traffic went where: per host, then the latest decisions")
    .argument('<identity>')
    .option('--follow', 'keep updating as traffic is recorded', false)
    .addOption(formatOption())
    .action((identity: string, flags: Pick<EgressOptions, 'follow' | 'format'>) =>
      cli.run(() => runEgress({ ...flags, identity, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/**
 * `bottle egress`: per host, requests allowed and denied, bytes up and down,
 * methods and last seen, then the latest decisions, folded from the event
 * log (egress-view/fold.ts). JSON is one object per view; following prints a
 * new one (or redraws the text) as events arrive.
 */
export async function runEgress(opts: EgressOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  const session = await openSession({ needWorker: false });
  const fold = new EgressFold();
  const show = () => {
    const view = fold.view();
    if (opts.format === 'json') {
      io.stdout(terminalSafeJson({ identity, ...view }));
      return;
    }
    const lines = [`egress of ${identity}`, '', ...egressTextLines(view)];
    io.stdout(`${opts.follow && io.isTTY ? CLEAR_SCREEN : ''}${lines.join('\n')}`);
  };
  try {
    if (!(await session.log.exists(identity)))
      throw new RuntimeFailure(
        `no events for ${identity}: no such bottle in ` +
          (session.target.kind === 'url' ? 'REDIS_URL' : 'the embedded Redis'),
      );
    const events = await session.log.read(identity);
    for (const ev of events) fold.add(ev);
    show();
    if (!opts.follow) return 0;
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let redraw: NodeJS.Timeout | undefined;
    try {
      const after = events.length ? events[events.length - 1].seq : 0;
      await whileWatchingHost(
        session,
        identity,
        (l) => io.stderr(l),
        () =>
          followUntil(
            session.log,
            identity,
            after,
            (ev) => {
              fold.add(ev);
              redraw ??= setTimeout(() => {
                redraw = undefined;
                show();
              }, REDRAW_DELAY_MS);
            },
            () => false,
            controller.signal,
          ),
      );
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (redraw) {
        clearTimeout(redraw);
        show();
      }
    }
    return 0;
  } finally {
    await session.close();
  }
}
