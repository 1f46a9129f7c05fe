import { main as runCli, type ProgramExtension } from './cli/main.js';
import { processIO, type CliIO } from './shared/io.js';

/**
 * The `bottle` program: the CLI's commands, and `bottle worker`, which runs the worker. This entry point is
 * the one module that sees both: the CLI never imports the worker.
 */
const workerCommand: ProgramExtension = {
  worker: (program, cli) => {
    program
      .command('worker')
      .description('run a worker for this Docker host')
      .option('--concurrency <n>', 'jobs run at once (default 32)')
      .option('--host <id>', "the id this Docker host is known by (default: the machine's hostname)")
      .action((o: { concurrency?: string; host?: string }) =>
        cli.run(async () => (await import('./worker/main.js')).runWorkerCommand(o, cli.io)),
      );
  },
};

export function main(argv: string[], io: CliIO = processIO): Promise<number> {
  return runCli(argv, io, workerCommand);
}
