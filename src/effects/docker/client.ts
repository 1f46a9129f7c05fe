import Docker from 'dockerode';
import { UsageError } from '../../shared/errors.js';
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
  const modem = docker.modem as { dial: (options: { method: string; path: string }, callback?: (...args: unknown[]) => void) => unknown };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    const started = performance.now();
    return dial(options, (...args: unknown[]) => {
      trace(`docker ${options.method} ${options.path.split('?')[0]} ${(performance.now() - started).toFixed(0)} ms`);
      callback?.(...args);
    });
  };
}

export type ContainerRuntime = 'runc' | 'runsc';

/**
 * gVisor is used whenever the daemon has `runsc` registered; nothing in the
 * manifest chooses it. `CLAUDE_BOTTLE_RUNTIME=runc` forces runc (for comparing
 * runtimes and for kernels where gVisor misbehaves); asking for runsc when the
 * daemon lacks it is an error rather than a silent downgrade.
 */
export async function detectRuntime(docker: Docker, env: NodeJS.ProcessEnv = process.env): Promise<ContainerRuntime> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  const registered = Boolean(info.Runtimes && 'runsc' in info.Runtimes);
  const forced = env.CLAUDE_BOTTLE_RUNTIME;
  if (forced === 'runc') return 'runc';
  if (forced === 'runsc') {
    if (!registered) throw new UsageError('CLAUDE_BOTTLE_RUNTIME=runsc but the Docker daemon has no runsc runtime registered; run scripts/setup-env.sh or unset it');
    return 'runsc';
  }
  if (forced) throw new UsageError(`CLAUDE_BOTTLE_RUNTIME must be runc or runsc, got ${JSON.stringify(forced)}`);
  return registered ? 'runsc' : 'runc';
}

/** dockerode reports HTTP status on errors; 404 means "already gone" for removals, 409 "already exists/in progress". */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err
    ? (err as { statusCode?: number }).statusCode
    : undefined;
}
