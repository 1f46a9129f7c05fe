import type Docker from 'dockerode';
import { demuxLogBuffer } from '../docker/logs.js';
import { PermanentEffectError } from '../types.js';
import { isPipelockStartupLine } from './log-line.js';

/**
 * Waits for pipelock's startup audit line so the agent never starts against
 * a proxy that is not listening yet. pipelock refuses a config it cannot
 * accept (unknown keys, a public-suffix wildcard) by exiting; that exit is
 * permanent for this launch and is reported with pipelock's own last words.
 */
export async function waitForPipelockReady(
  container: Docker.Container,
  opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    // Inspect first: a startup line from a pipelock that has since died must not count.
    const info = await container.inspect();
    const raw = (await container.logs({ follow: false, stdout: true, stderr: true })) as unknown as Buffer;
    const { stdout, stderr } = demuxLogBuffer(raw);
    if (info.State.Running && stdout.split('\n').some(isPipelockStartupLine)) return;
    if (!info.State.Running) {
      const lastWords = `${stderr}\n${stdout}`.trim().split('\n').slice(-3).join(' | ');
      throw new PermanentEffectError(`pipelock exited (code ${info.State.ExitCode}) before it was ready: ${lastWords || 'no output'}`);
    }
    if (Date.now() > deadline) throw new Error('pipelock did not log its startup line in time');
    if (opts.signal?.aborted) throw new Error('interrupted while waiting for pipelock');
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 200));
  }
}
