import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { BottleError } from '../shared/errors.js';
import { processIO, type CliIO } from '../shared/io.js';
import { visibleLines } from '../shared/visible-text.js';

const formatOption = () => new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');

/**
 * Builds the `bottle` program; each action resolves to an exit code. Command
 * modules load only when their command runs: bullmq, dockerode, ioredis and
 * ink each cost a noticeable part of a second to import.
 */
export function buildProgram(io: CliIO, setExit: (code: number) => void, extend?: ProgramExtension): Command {
  const program = new Command('bottle')
    .description('Run coding agents inside sandboxed Docker containers ("bottles")')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--verbose', 'show error details and stack traces')
    .option('--manifest <path>', 'manifest file (default: $CLAUDE_BOTTLE_MANIFEST or ~/claude-bottle.json)')
    .showHelpAfterError('(run bottle --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s.trimEnd()), writeErr: (s) => io.stderr(s.trimEnd()) });
  const run = (fn: () => Promise<number>) => async () => setExit(await fn());
  const manifest = () => program.opts().manifest as string | undefined;

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
    .addOption(formatOption())
    .action((agent: string, args: string[], o) =>
      run(async () =>
        (await import('./commands/start.js')).runStart(
          {
            agent,
            args,
            manifestPath: manifest(),
            cwd: o.cwd,
            copyCwd: o.copyCwd,
            detach: o.detach,
            dryRun: o.dryRun,
            format: o.format,
            yes: o.yes,
            host: o.host,
          },
          io,
        ),
      )(),
    );
  program
    .command('resume')
    .description('relaunch a preserved bottle with its Dockerfile and transcript; args follow --continue')
    .argument('<identity>')
    .argument('[args...]')
    .option('--detach', 'run headless', false)
    .option('-y, --yes', 'launch without showing the plan and asking (required without a terminal)', false)
    .action((identity: string, args: string[], o) =>
      run(async () => {
        const { runResume } = await import('./commands/resume.js');
        return runResume({ identity, args, detach: o.detach, yes: o.yes, manifestPath: manifest() }, io);
      })(),
    );
  program
    .command('attach')
    .description("re-attach your terminal to a running bottle's agent (detach: Ctrl-P Ctrl-Q)")
    .argument('<identity>')
    .action((identity: string) =>
      run(async () => (await import('./commands/attach.js')).runAttach({ identity, manifestPath: manifest() }, io))(),
    );
  program
    .command('logs')
    .description("the agent's own output (its terminal), while its container exists")
    .argument('<identity>')
    .option('--follow', 'keep printing until the agent exits', false)
    .action((identity: string, o) =>
      run(async () => {
        const { runLogs } = await import('./commands/logs.js');
        return runLogs({ identity, follow: o.follow, manifestPath: manifest() }, io);
      })(),
    );
  program
    .command('list')
    .description('bottles and their current state')
    .option('--all', 'include cleaned bottles', false)
    .addOption(formatOption())
    .action((o) =>
      run(async () => (await import('./commands/list.js')).runList({ all: o.all, format: o.format }, io))(),
    );
  program
    .command('events')
    .description('the lifecycle event log of a bottle')
    .argument('<identity>')
    .option('--follow', 'keep printing new events', false)
    .addOption(formatOption())
    .action((identity: string, o) =>
      run(async () =>
        (await import('./commands/events.js')).runEvents(
          { identity, follow: o.follow, format: o.format, manifestPath: manifest() },
          io,
        ),
      )(),
    );
  program
    .command('replay')
    .description('fold the event log through the machine (no effects) and compare with the live state')
    .argument('<identity>')
    .option('--to <seq>', 'fold only events up to this seq')
    .addOption(formatOption())
    .action((identity: string, o) =>
      run(async () =>
        (await import('./commands/replay.js')).runReplay(
          { identity, to: o.to, format: o.format, manifestPath: manifest() },
          io,
        ),
      )(),
    );
  program
    .command('approve')
    .description('approve the pending capability request of a bottle')
    .argument('<identity>')
    .option('--request <id>', 'the request you reviewed; refused unless it is the pending one')
    .action((identity: string, o) =>
      run(async () =>
        (await import('./commands/control.js')).runDecide(
          { identity, approve: true, requestId: o.request, manifestPath: manifest() },
          io,
        ),
      )(),
    );
  program
    .command('deny')
    .description('deny the pending capability request of a bottle')
    .argument('<identity>')
    .requiredOption('--reason <text>', 'why (recorded in the event log)')
    .action((identity: string, o) =>
      run(async () =>
        (await import('./commands/control.js')).runDecide(
          { identity, approve: false, reason: o.reason, manifestPath: manifest() },
          io,
        ),
      )(),
    );
  program
    .command('stop')
    .description('stop the agent; its state is preserved for resume')
    .argument('<identity>')
    .action((identity: string) =>
      run(async () => (await import('./commands/control.js')).runStop({ identity, manifestPath: manifest() }, io))(),
    );
  program
    .command('cleanup')
    .description('remove orphaned Docker resources and stale state')
    .option('--dry-run', 'only list what would be removed', false)
    .option('--host <id>', 'only on this Docker host (default: every host a live worker serves)')
    .action((o) =>
      run(async () => (await import('./commands/cleanup.js')).runCleanup({ dryRun: o.dryRun, host: o.host }, io))(),
    );
  program
    .command('hosts')
    .description('live worker hosts: id, engine, build, bottles, capacity')
    .addOption(formatOption())
    .action((o) => run(async () => (await import('./commands/hosts.js')).runHosts({ format: o.format }, io))());
  program
    .command('doctor')
    .description('check Docker, runsc, Redis, images and worker liveness')
    .action(() => run(async () => (await import('./commands/doctor.js')).runDoctor(io, {}))());
  program
    .command('shutdown')
    .description('stop the redis-server and worker this state folder started (refused while bottles run)')
    .option('--force', 'stop them even while bottles run (unwatched until a worker runs again)', false)
    .action((o) => run(async () => (await import('./commands/shutdown.js')).runShutdown({ force: o.force }, io))());
  program
    .command('dashboard')
    .description('live view of bottles, states, pending requests, egress and events')
    // Loaded on demand: ink and react take ~0.7 s to import, which every other command would pay.
    .action(() => run(async () => (await import('./commands/dashboard.js')).runDashboard(io))());
  extend?.(program, run, io);
  return program;
}

/** Commands registered from outside the CLI (the worker's), with the same exit-code plumbing. */
export type ProgramExtension = (
  program: Command,
  run: (fn: () => Promise<number>) => () => Promise<void>,
  io: CliIO,
) => void;

/** dist/cli/ and dist/cli-bundle/ both sit two folders below package.json. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[], io: CliIO = processIO, extend?: ProgramExtension): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c), extend);
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" to commander; everything else is a usage error.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof BottleError) {
      // A message may quote text that came from a bottle: line breaks stay, other control characters are spelled out.
      io.stderr(`bottle: ${visibleLines(err.message).join('\n')}`);
      if (verbose && err.detail) io.stderr(err.detail);
      if (verbose && err.stack) io.stderr(err.stack);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`bottle: ${visibleLines(message).join('\n')}`);
    if (verbose && err instanceof Error && err.stack) io.stderr(err.stack);
    else io.stderr('(run with --verbose for details)');
    return 1;
  }
}
