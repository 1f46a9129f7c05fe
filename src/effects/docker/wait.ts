import type Docker from 'dockerode';

/**
 * The agent's exit as the lifecycle records it. A shell reports death by
 * signal N as 128+N; Docker does the same for the container's exit status.
 */
export interface AgentExit {
  code: number;
  signal: string | null;
}

const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
};

export function exitFromStatus(code: number): AgentExit {
  if (code > 128 && code < 128 + 65) return { code, signal: SIGNAL_NAMES[code - 128] ?? `SIG${code - 128}` };
  return { code, signal: null };
}

/** Resolves when the container stops; returns at once for an already-stopped container. */
export async function waitForAgentExit(docker: Docker, container: Docker.Container | string): Promise<AgentExit> {
  const target = typeof container === 'string' ? docker.getContainer(container) : container;
  const { StatusCode } = (await target.wait({ condition: 'not-running' })) as { StatusCode: number };
  return exitFromStatus(StatusCode);
}
