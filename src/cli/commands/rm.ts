import type { Command } from 'commander';
import type { CliIO } from '../../shared/io.js';
import { checkIdentityArg } from '../identity-arg.js';
import { confirmDiscard, discardAll, discardTarget } from '../discard.js';
import { openSession } from '../session.js';
import type { CliContext } from '../program.js';

export interface RmOptions {
  identities: string[];
  yes: boolean;
  force: boolean;
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('rm')
    .description('discard preserved or failed bottles: their state folders and the images only they used')
    .argument('<identity...>')
    .option('-y, --yes', 'discard without asking (required without a terminal)', false)
    .option('--force', 'stop a running bottle first, then discard it', false)
    .action((identities: string[], o: { yes: boolean; force: boolean }) =>
      cli.run(() => runRm({ identities, ...o, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/**
 * `bottle rm <identity>...`: every bottle is checked before anything happens (a running one is refused
 * without --force), the operator confirms once, then each is discarded through its machine.
 */
export async function runRm(opts: RmOptions, io: CliIO): Promise<number> {
  const identities: string[] = [];
  for (const raw of opts.identities) identities.push(await checkIdentityArg(raw, { manifestPath: opts.manifestPath }));
  const session = await openSession({ needWorker: false });
  try {
    const targets = [];
    for (const identity of [...new Set(identities)]) targets.push(await discardTarget(session, identity, opts.force));
    if (!(await confirmDiscard(targets, { yes: opts.yes, command: 'rm' }, io))) {
      io.stderr('nothing discarded');
      return 0;
    }
    return await discardAll(session, targets, io);
  } finally {
    await session.close();
  }
}
