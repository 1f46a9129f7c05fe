import Docker from 'dockerode';
import { chooseRuntime, type ContainerRuntime } from '../../shared/runtime.js';
import { trace, tracing } from '../../shared/trace.js';

/** One dockerode client per process; DOCKER_HOST is honoured, else the local socket. */
let shared: Docker | undefined;
export function dockerClient(): Docker {
  if (!shared) {
    shared = new Docker();
    if (tracing) traceApiCalls(shared);
  }
  return shared;
}

/** Under CLAUDE_BOTTLE_TRACE, one line per Docker API call with how long its answer took. */
function traceApiCalls(docker: Docker): void {
  const modem = docker.modem as {
    dial: (options: { method: string; path: string }, callback?: (...args: unknown[]) => void) => unknown;
  };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    const started = performance.now();
    return dial(options, (...args: unknown[]) => {
      trace(`docker ${options.method} ${options.path.split('?')[0]} ${(performance.now() - started).toFixed(0)} ms`);
      callback?.(...args);
    });
  };
}

export type { ContainerRuntime } from '../../shared/runtime.js';

/** The runtimes the daemon has registered (runc always; runsc when gVisor is set up). */
export async function registeredRuntimes(docker: Docker): Promise<string[]> {
  return (await daemonFacts(docker)).runtimes;
}

/**
 * What a worker says about its daemon, from one `info` call: the registered
 * runtimes and the engine's own id (which tells two daemons apart from two
 * workers on one).
 */
export async function daemonFacts(docker: Docker): Promise<{ runtimes: string[]; engineId: string }> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown>; ID?: string };
  return { runtimes: Object.keys(info.Runtimes ?? { runc: {} }), engineId: info.ID ?? '' };
}

/** The runtime a bottle on this daemon runs under (see chooseRuntime). */
export async function detectRuntime(docker: Docker, env: NodeJS.ProcessEnv = process.env): Promise<ContainerRuntime> {
  return chooseRuntime(await registeredRuntimes(docker), env);
}

/** dockerode reports HTTP status on errors; 404 means "already gone" for removals, 409 "already exists/in progress". */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err
    ? (err as { statusCode?: number }).statusCode
    : undefined;
}

/** Whether the daemon has an image under this tag; errors other than "no such image" are thrown. */
export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}
