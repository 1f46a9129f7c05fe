import { CommanderError } from 'commander';
import { BottleError } from '../shared/errors.js';
import { processIO, type CliIO } from '../shared/io.js';
import { checkBottleHome } from '../shared/private-home.js';
import { visibleLines } from '../shared/visible-text.js';
import { COMMANDS, type CommandModule } from './commands/index.js';
import { bottleProgram, commandWord, type Registrar } from './program.js';

/** Commands registered from outside the CLI (the worker's, by the entry point), by name. */
export type ProgramExtension = Record<string, Registrar>;

/** The `bottle` program with the commands `argv` needs; each action resolves to an exit code. */
async function buildProgram(argv: string[], io: CliIO, setExit: (code: number) => void, extension: ProgramExtension) {
  const program = bottleProgram(io);
  const cli = {
    io,
    run: async (work: () => Promise<number>) => {
      // Every command (the worker's too) runs through here: the home is checked once, before anything uses it.
      checkBottleHome();
      setExit(await work());
    },
    manifestPath: () => program.opts<{ manifest?: string }>().manifest,
  };
  const added = Object.entries(extension).map(
    ([name, register]) => [name, () => Promise.resolve({ register })] as const,
  );
  const modules = new Map<string, CommandModule>([...COMMANDS, ...added]);
  const word = commandWord(argv.slice(2));
  const asked = word === undefined ? undefined : modules.get(word);
  const versionOnly = word === undefined && (argv.includes('-V') || argv.includes('--version'));
  const needed = asked ? [asked] : versionOnly ? [] : [...new Set(modules.values())];
  for (const { register } of await Promise.all(needed.map((load) => load()))) register(program, cli);
  return program;
}

export async function main(argv: string[], io: CliIO = processIO, extension: ProgramExtension = {}): Promise<number> {
  let code = 0;
  const verbose = argv.includes('--verbose');
  try {
    const program = await buildProgram(argv, io, (c) => (code = c), extension);
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
