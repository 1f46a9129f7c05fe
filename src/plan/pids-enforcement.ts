import type { ContainerRuntime } from '../shared/runtime.js';

/**
 * How `limits.pids` is made to mean "at most this many of the agent's processes (threads
 * included)" on each runtime. Under runc the container's pids cgroup counts exactly the agent's
 * tasks, so it is the limit. Under gVisor the cgroup also counts the sandbox's own host threads,
 * and reaching it ends the whole sandbox rather than failing one fork. So there the limit is the
 * agent user's RLIMIT_NPROC, which gVisor's kernel enforces for the tasks inside it (a fork over
 * it fails with EAGAIN, the sandbox goes on), and the cgroup stays as a ceiling with room for
 * gVisor's threads, so the host is bounded all the same. RLIMIT_NPROC is not used under runc:
 * there it would count the uid's processes on the whole host.
 */
export interface PidsEnforcement {
  /** The agent user's process limit inside the sandbox (RLIMIT_NPROC); null where the cgroup alone is the limit. */
  nproc: number | null;
  /** The container's pids cgroup limit. */
  cgroup: number;
}

/**
 * The ceiling's room for gVisor: a base for the sandbox itself and some per task inside it, with
 * a margin over what a fork bomb held at the limit was measured to take on runsc's ptrace
 * platform (README, Security model): each process's stub there gets a host thread for every
 * sentry thread that runs it, and how many depends on the bottle's CPU and memory settings.
 * Less would end the sandbox at the limit again.
 */
export const GVISOR_BASE_THREADS = 256;
export const GVISOR_THREADS_PER_TASK = 32;

export function pidsEnforcement(pids: number, runtime: ContainerRuntime): PidsEnforcement {
  if (runtime === 'runc') return { nproc: null, cgroup: pids };
  return { nproc: pids, cgroup: GVISOR_BASE_THREADS + GVISOR_THREADS_PER_TASK * pids };
}

/** One line for the plan: how many processes, counted where. */
export function describePidsEnforcement({ nproc, cgroup }: PidsEnforcement): string {
  if (nproc === null) return `at most ${cgroup} (threads included), by the container's pids cgroup`;
  return (
    `at most ${nproc} of the agent's user (threads included), by RLIMIT_NPROC inside gVisor; ` +
    `the container's pids cgroup, which also counts gVisor's own threads, is a ceiling of ${cgroup}`
  );
}
