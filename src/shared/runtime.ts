import { UsageError } from './errors.js';

export type ContainerRuntime = 'runc' | 'runsc';

/**
 * gVisor is used whenever the daemon has `runsc` registered; nothing in the
 * manifest chooses it. `CLAUDE_BOTTLE_RUNTIME=runc` forces runc (for comparing
 * runtimes and for kernels where gVisor misbehaves); asking for runsc when the
 * daemon lacks it is an error rather than a silent downgrade.
 */
export function chooseRuntime(registered: readonly string[], env: NodeJS.ProcessEnv = process.env): ContainerRuntime {
  const hasRunsc = registered.includes('runsc');
  const forced = env.CLAUDE_BOTTLE_RUNTIME;
  if (forced === 'runc') return 'runc';
  if (forced === 'runsc') {
    if (!hasRunsc) {
      throw new UsageError(
        'CLAUDE_BOTTLE_RUNTIME=runsc but the Docker daemon has no runsc runtime registered; ' +
          'run scripts/setup-env.sh or unset it',
      );
    }
    return 'runsc';
  }
  if (forced) throw new UsageError(`CLAUDE_BOTTLE_RUNTIME must be runc or runsc, got ${JSON.stringify(forced)}`);
  return hasRunsc ? 'runsc' : 'runc';
}

/** How to get runsc where it is missing: the commands for Debian/Ubuntu, and why macOS has none. */
export const RUNSC_INSTALL_HINT =
  'on Debian/Ubuntu install and register it with `sudo apt-get install -y runsc && sudo runsc install && ' +
  "sudo systemctl reload docker` (where apt has no runsc package, add gVisor's apt repository first: " +
  'https://gvisor.dev/docs/user_guide/install/); Docker Desktop on macOS has no runsc, so bottles there run under runc';

/**
 * Why a plan runs under runc, said plainly; nothing under runsc. `forced` when CLAUDE_BOTTLE_RUNTIME=runc
 * chose it, else the daemon has no runsc registered.
 */
export function runtimeNote(runtime: ContainerRuntime, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (runtime === 'runsc') return undefined;
  if (env.CLAUDE_BOTTLE_RUNTIME === 'runc') return 'runc, as CLAUDE_BOTTLE_RUNTIME=runc asks (gVisor not used)';
  return (
    'runc: gVisor (runsc) is not registered with the Docker daemon, so the agent runs on the host kernel ' +
    `without gVisor in between; ${RUNSC_INSTALL_HINT}`
  );
}
