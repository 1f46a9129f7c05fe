import type { Command } from 'commander';
import { parseBudgetOption } from '../budget-option.js';
import { UsageError } from '../../shared/errors.js';
import { collect, publishedPorts } from '../publish-option.js';
import type { CliIO } from '../../shared/io.js';
import { trace } from '../../shared/trace.js';
import { requireConfirmable } from '../confirm.js';
import { launch, planLaunch } from '../launch.js';
import { formatOption, type CliContext } from '../program.js';
import { openSession } from '../session.js';
import { runDryRun } from './dry-run.js';

export interface StartOptions {
  agent: string;
  manifestPath?: string;
  cwd?: string;
  copyCwd: boolean;
  detach: boolean;
  dryRun: boolean;
  format: 'text' | 'json';
  args: string[];
  /** The Docker host to pin the bottle to (see chooseHost). */
  host?: string;
  yes?: boolean;
  /** `--budget`: N tokens, or Nusd / $N. */
  budget?: string;
  /** `--publish [ADDR:]HOST_PORT:BOTTLE_PORT`, repeatable. */
  publish?: string[];
  remoteControl?: boolean;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('start')
    .description('plan a bottle for <agent>, or start it and attach your terminal')
    .argument('<agent>', 'agent name from the manifest')
    .argument('[args...]', 'arguments appended to the agent command (after --)')
    .option('--cwd <dir>', 'working directory for the agent (default: current directory)')
    .option('--copy-cwd', 'copy the working directory (with .git) into the bottle instead of bind-mounting it', false)
    .option('--detach', 'run headless; print the identity as the first line of stdout', false)
    .option('--dry-run', 'print the launch plan; create nothing', false)
    .option('-y, --yes', 'launch without showing the plan and asking (required without a terminal)', false)
    .option(
      '--host <id>',
      'the Docker host to run on (default: this one when a worker serves it, else the least loaded)',
    )
    .option('--budget <amount>', 'what the bottle may spend: N tokens, or Nusd / $N (replaces limits.budget)')
    .option(
      '--publish <[addr:]host_port:bottle_port>',
      'publish a port of the bottle on the host (repeatable; address 127.0.0.1 unless given)',
      collect,
    )
    .option('--remote-control', 'Claude Code Remote Control (refused: it needs your real token in the bottle)', false)
    .addOption(formatOption())
    .action((agent: string, args: string[], flags: Omit<StartOptions, 'agent' | 'args' | 'manifestPath'>) =>
      cli.run(() => runStart({ ...flags, agent, args, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

export async function runStart(opts: StartOptions, io: CliIO): Promise<number> {
  if (opts.format === 'json' && !opts.dryRun) {
    throw new UsageError(
      '--format json is only for --dry-run (a live start attaches a terminal); ' +
        'use `bottle events --format json` to follow a bottle as JSON',
    );
  }
  if (opts.dryRun) return runDryRun(opts, io);
  requireConfirmable(opts.yes ?? false, io, 'start');
  trace('start: command loaded');
  const planned = await planLaunch({
    manifest: { path: opts.manifestPath },
    agent: opts.agent,
    cwd: opts.cwd ?? process.cwd(),
    copyCwd: opts.copyCwd,
    args: opts.args,
    budget: parseBudgetOption(opts.budget),
    publish: publishedPorts(opts.publish),
    remoteControl: opts.remoteControl,
    host: {
      kind: 'choose',
      requested: opts.host,
      open: () => openSession({ needWorker: true, say: (l) => io.stderr(l) }),
    },
  });
  const session = planned.session!;
  try {
    return await launch(session, planned, { yes: opts.yes ?? false, detach: opts.detach }, io);
  } finally {
    await session.close();
  }
}
