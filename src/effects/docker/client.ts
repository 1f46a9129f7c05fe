import Docker from 'dockerode';

/** One dockerode client per process; DOCKER_HOST is honoured, else the local socket. */
let shared: Docker | undefined;
export function dockerClient(): Docker {
  shared ??= new Docker();
  return shared;
}

export type ContainerRuntime = 'runc' | 'runsc';

/** gVisor is used whenever the daemon has `runsc` registered; nothing in the manifest chooses it. */
export async function detectRuntime(docker: Docker): Promise<ContainerRuntime> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  return info.Runtimes && 'runsc' in info.Runtimes ? 'runsc' : 'runc';
}

/** dockerode reports HTTP status on errors; 404 means "already gone" for removals, 409 "already exists/in progress". */
export function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err
    ? (err as { statusCode?: number }).statusCode
    : undefined;
}
