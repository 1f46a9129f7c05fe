import type Docker from 'dockerode';
import { waitForReadyLine, type ReadyWaitOptions } from '../docker/logs.js';
import { isPipelockStartupLine } from './log-line.js';

/**
 * Waits for pipelock's startup audit line. pipelock refuses a config it
 * cannot accept (unknown keys, a public-suffix wildcard) by exiting; that exit
 * is permanent for this launch and is reported with pipelock's own last words.
 */
export function waitForPipelockReady(container: Docker.Container, opts: ReadyWaitOptions = {}): Promise<void> {
  return waitForReadyLine(container, 'pipelock', isPipelockStartupLine, opts);
}
