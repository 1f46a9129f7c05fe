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
