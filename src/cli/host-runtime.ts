import type { Redis } from 'ioredis';
import { chooseRuntime, type ContainerRuntime } from '../shared/runtime.js';
import { liveWorkers } from '../worker/heartbeat.js';
import { localRuntime } from './docker-probe.js';

/**
 * The runtime a bottle will run under: from the runtimes the live worker's
 * Docker daemon registered (its heartbeat), so a start needs no Docker client
 * of its own; without a worker that says, the local daemon is asked.
 */
export async function hostRuntime(redis?: Redis): Promise<ContainerRuntime> {
  if (redis) {
    const said = (await liveWorkers(redis)).find((w) => w.runtimes.length > 0);
    if (said) return chooseRuntime(said.runtimes);
  }
  return localRuntime();
}
