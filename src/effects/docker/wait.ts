import type Docker from 'dockerode';
import { signalForExitCode } from '../../shared/exit-signal.js';

/**
 * The agent's exit as the lifecycle records it. A shell reports death by
 * signal N as 128+N; Docker does the same for the container's exit status.
 */
export interface AgentExit {
  code: number;
  signal: string | null;
}

export function exitFromStatus(code: number): AgentExit {
  return { code, signal: signalForExitCode(code) };
}

/** Resolves when the container stops; returns at once for an already-stopped container. */
export async function waitForAgentExit(docker: Docker, container: Docker.Container | string): Promise<AgentExit> {
  return waitForExit(docker, container);
}

/** Resolves when the container stops, as waitForAgentExit; aborting `signal` ends the wait (it rejects). */
export async function waitForExit(
  docker: Docker,
  container: Docker.Container | string,
  signal?: AbortSignal,
): Promise<AgentExit> {
  const target = typeof container === 'string' ? docker.getContainer(container) : container;
  const options = { condition: 'not-running' as const, ...(signal ? { abortSignal: signal } : {}) };
  const { StatusCode } = (await target.wait(options)) as { StatusCode: number };
  return exitFromStatus(StatusCode);
}
