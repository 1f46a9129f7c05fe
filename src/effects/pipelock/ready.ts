import type Docker from 'dockerode';
import { ContainerExitedError, waitForReadyLine, type ReadyWaitOptions } from '../docker/logs.js';
import { PermanentEffectError } from '../types.js';
import { isPipelockStartupLine } from './log-line.js';

/**
 * Waits for pipelock's startup audit line. pipelock refuses a config it
 * cannot accept (unknown keys, a public-suffix wildcard) by exiting; that exit
 * is permanent for this launch and is reported with pipelock's own last words.
 */
export async function waitForPipelockReady(container: Docker.Container, opts: ReadyWaitOptions = {}): Promise<void> {
  try {
    await waitForReadyLine(container, 'pipelock', isPipelockStartupLine, opts);
  } catch (err) {
    if (err instanceof ContainerExitedError) throw new PermanentEffectError(err.message);
    throw err;
  }
}
