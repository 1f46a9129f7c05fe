import Docker from 'dockerode';
import { UsageError } from '../../shared/errors.js';

/** One dockerode client per process; DOCKER_HOST is honoured, else the local socket. */
let shared: Docker | undefined;
export function dockerClient(): Docker {
  shared ??= new Docker();
  return shared;
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
