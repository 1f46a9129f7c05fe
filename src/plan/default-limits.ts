import type { ContainerRuntime } from '../shared/runtime.js';
import { pidsEnforcement, type PidsEnforcement } from './pids-enforcement.js';
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

/** A plan's limits with nothing left to fill. */
export type FilledLimits = BottlePlan['limits'] & {
  memory: string;
  cpus: number;
  pids: number;
  pids_enforcement: PidsEnforcement;
};

/**
 * The manifest's limits with the defaults filled in; `defaulted` names the ones the manifest left
 * out, if any, and `pids_enforcement` says how the pids limit is enforced on this runtime. A plan
 * made before the pids limit meant the same on both runtimes carries a far higher defaulted one
 * under runsc (its cgroup then counted gVisor's threads too): a defaulted limit is today's default.
 */
export function planLimits(
  limits: {
    memory?: string | null;
    cpus?: number | null;
    pids?: number | null;
    transcript?: string;
    defaulted?: LimitName[];
  },
  runtime: ContainerRuntime,
): FilledLimits {
  const defaulted = (['memory', 'cpus', 'pids'] as const).filter(
    (name: LimitName) => limits[name] == null || limits.defaulted?.includes(name),
  );
  const pick = <N extends LimitName>(name: N) =>
    defaulted.includes(name) ? DEFAULT_LIMITS[name] : (limits[name] as (typeof DEFAULT_LIMITS)[N]);
  const pids = pick('pids');
  return {
    memory: pick('memory'),
    cpus: pick('cpus'),
    pids,
    ...(limits.transcript ? { transcript: limits.transcript } : {}),
    ...(defaulted.length > 0 ? { defaulted } : {}),
    pids_enforcement: pidsEnforcement(pids, runtime),
  };
}
