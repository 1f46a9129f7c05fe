import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import type { CliIO } from '../shared/io.js';

/** What a command module's commands are registered with. */
export interface CliContext {
  io: CliIO;
  /** Runs a command's work; its result is the process's exit code. */
  run(work: () => Promise<number>): Promise<void>;
  /** The global `--manifest`, when given. */
  manifestPath(): string | undefined;
}

/** Adds a command module's commands, with their arguments and options, to the `bottle` program. */
export type Registrar = (program: Command, cli: CliContext) => void;

export const formatOption = (choices: readonly string[] = ['text', 'json']) =>
  new Option('--format <format>', 'output format').choices(choices).default('text');

/** The `bottle` program with its global options and no command yet; commander's output goes to `io`. */
export function bottleProgram(io: CliIO): Command {
  return new Command('bottle')
    .description('Run coding agents inside sandboxed Docker containers ("bottles")')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--verbose', 'show error details and stack traces')
    .option('--manifest <path>', 'manifest file (default: $CLAUDE_BOTTLE_MANIFEST or ~/claude-bottle.json)')
    .showHelpAfterError('(run bottle --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s.trimEnd()), writeErr: (s) => io.stderr(s.trimEnd()) });
}

/** The command word: the first argument that is neither a global option nor its value. */
export function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--manifest') i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return undefined;
}

/** dist/cli/ and dist/cli-bundle/ both sit two folders below package.json. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}
