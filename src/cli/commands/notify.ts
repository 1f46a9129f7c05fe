import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { CliIO } from '../../shared/io.js';
import { visibleText } from '../../shared/visible-text.js';
import { followAttention, type RaisedAttention } from '../attention-feed.js';
import { openSession } from '../session.js';
import type { CliContext } from '../program.js';

export interface NotifyOptions {
  command: string;
}

/** A notification command that hangs is ended after this long, so the next one runs. */
const COMMAND_TIMEOUT_MS = 60_000;

export function register(program: Command, cli: CliContext): void {
  program
    .command('notify')
    .description('run a command once per new attention of any bottle (identity, kind, message in its environment)')
    .requiredOption('--command <command>', 'run by /bin/sh with BOTTLE_IDENTITY, BOTTLE_ATTENTION_KIND, ...')
    .action((flags: NotifyOptions) => cli.run(() => runNotify(flags, cli.io)));
}

/**
 * The command's environment for one attention. The message is the agent's words: every control and
 * invisible character is spelled out (visible-text.ts), and it reaches the command only as a
 * variable, never as part of the command line, so no shell ever reads it as code.
 */
export function attentionEnv(raised: RaisedAttention): Record<string, string> {
  return {
    BOTTLE_IDENTITY: raised.identity,
    BOTTLE_ATTENTION_KIND: raised.attention.kind,
    BOTTLE_ATTENTION_MESSAGE: visibleText(raised.attention.message),
  };
}

/** Runs the operator's command for one attention; resolves with its exit code (never rejects). */
export function runNotifyCommand(command: string, env: Record<string, string>, io: CliIO): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: COMMAND_TIMEOUT_MS,
    });
    child.stdout.on('data', (chunk: Buffer) => io.stdout(visibleText(chunk.toString('utf8').trimEnd())));
    child.stderr.on('data', (chunk: Buffer) => io.stderr(visibleText(chunk.toString('utf8').trimEnd())));
    child.on('error', (err) => {
      io.stderr(`bottle notify: cannot run the command: ${err.message}`);
      resolve(127);
    });
    child.on('close', (code) => resolve(code ?? 128));
  });
}

/**
 * `bottle notify --command CMD`: follows every bottle of every host and runs CMD once per new
 * attention, one at a time in the order they were raised, until interrupted.
 */
export async function runNotify(opts: NotifyOptions, io: CliIO): Promise<number> {
  const session = await openSession({ needWorker: false });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let queue: Promise<unknown> = Promise.resolve();
  try {
    io.stderr('bottle notify: following every bottle; Ctrl-C ends');
    await followAttention(
      session,
      (raised) => {
        queue = queue.then(async () => {
          const code = await runNotifyCommand(opts.command, attentionEnv(raised), io);
          const failed = code === 0 ? '' : ` (the command exited ${code})`;
          io.stderr(`bottle notify: ${raised.identity} ${raised.attention.kind}${failed}`);
        });
      },
      controller.signal,
    );
    await queue;
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await session.close();
  }
}
