import { createInterface } from 'node:readline';
import { formatPlanText } from '../plan/format-text.js';
import type { BottlePlan } from '../plan/schema.js';
import { UsageError } from '../shared/errors.js';
import type { CliIO } from '../shared/io.js';

/**
 * Confirm before launch: `start` and `resume` show the resolved plan (the
 * dry-run text) and ask `Launch? [y/N]` on a terminal. `--yes` skips the
 * question; without a terminal there is nobody to ask, so the command refuses
 * before it creates anything rather than launching what no one has seen.
 */
export function requireConfirmable(yes: boolean, io: Pick<CliIO, 'isTTY'>, command: 'start' | 'resume'): void {
  if (yes || io.isTTY) return;
  throw new UsageError(`no terminal to confirm the launch on; pass --yes to ${command} without asking`);
}

/** Reads one answer line from the terminal; end of input (Ctrl-D) or Ctrl-C answers no. */
export type AskLine = (question: string) => Promise<string>;

export const askOnTerminal: AskLine = (question) =>
  new Promise((resolveAnswer) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    let answered = false;
    const finish = (answer: string) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolveAnswer(answer);
    };
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      finish('');
    });
    rl.on('close', () => finish(''));
    rl.question(question, finish);
  });

/** Shows the plan and asks; true when the launch may go ahead. */
export async function confirmLaunch(
  plan: BottlePlan,
  yes: boolean,
  io: CliIO,
  ask: AskLine = askOnTerminal,
): Promise<boolean> {
  if (yes) return true;
  io.stderr(formatPlanText(plan));
  const answer = (await ask('Launch? [y/N] ')).trim().toLowerCase();
  if (answer === 'y' || answer === 'yes') return true;
  io.stderr(`not launched; nothing was changed for ${plan.identity}`);
  return false;
}
