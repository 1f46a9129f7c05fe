import type { ContainerRuntime } from '../shared/runtime.js';
import type { BottlePlan } from './schema.js';

type LimitName = 'memory' | 'cpus' | 'pids';

/** How much of the agent's transcript a snapshot copies onto the worker's host when the manifest sets no limit. */
export const DEFAULT_TRANSCRIPT_LIMIT = '256m';

/**
 * What an agent gets when the manifest sets no limit: enough for a coding
 * agent running builds and test suites, bounded so that a runaway (a fork
 * bomb, a leaking process, a build that eats every core) cannot take the
 * Docker host down with it.
 */
export const DEFAULT_LIMITS: Readonly<{ memory: string; cpus: number; pids: number }> = {
  memory: '4g',
  cpus: 2,
  pids: 1024,
};

/**
 * Under gVisor the pids limit counts the sandbox's own host threads, several
 * per process inside it, and reaching it ends the whole sandbox rather than
 * failing one fork; the default leaves a parallel build the same headroom it
 * has under runc.
 */
export const DEFAULT_RUNSC_PIDS = 16384;

export function defaultPids(runtime: ContainerRuntime): number {
  return runtime === 'runsc' ? DEFAULT_RUNSC_PIDS : DEFAULT_LIMITS.pids;
}

/** The manifest's limits with the defaults filled in; `defaulted` names the ones the manifest left out, if any. */
export function planLimits(
  limits: { memory?: string | null; cpus?: number | null; pids?: number | null; transcript?: string },
  runtime: ContainerRuntime,
): BottlePlan['limits'] {
  const defaulted = (['memory', 'cpus', 'pids'] as const).filter((name: LimitName) => limits[name] == null);
  return {
    memory: limits.memory ?? DEFAULT_LIMITS.memory,
    cpus: limits.cpus ?? DEFAULT_LIMITS.cpus,
    pids: limits.pids ?? defaultPids(runtime),
    ...(limits.transcript ? { transcript: limits.transcript } : {}),
    ...(defaulted.length > 0 ? { defaulted } : {}),
  };
}
