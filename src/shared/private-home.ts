import { statSync } from 'node:fs';
import { UsageError } from './errors.js';
import { bottleHome } from './paths.js';

/**
 * Whoever can write to the claude-bottle home can plant what the CLI and the worker trust there:
 * the embedded Redis's socket (and with it the event log and the host keys secrets are sealed to),
 * a host's private key, a bottle's state. So an existing home must be this user's (or root's) and
 * writable by no one else. One that does not exist yet is fine: it is made 0700.
 */
export function homeProblem(path: string, uid: number | undefined): string | undefined {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats) return undefined;
  const { mode, uid: owner } = stats;
  if (uid !== undefined && owner !== uid && owner !== 0) {
    return (
      `the claude-bottle home ${path} is owned by uid ${owner}, not by this user (uid ${uid}) or root; ` +
      'run bottle as its owner or set CLAUDE_BOTTLE_HOME to a folder of your own'
    );
  }
  if ((mode & 0o022) !== 0) {
    return (
      `the claude-bottle home ${path} is writable by group or others (mode ${(mode & 0o777).toString(8)}); ` +
      `run: chmod go-w ${path}`
    );
  }
  return undefined;
}

/** Refuses (exit 2) a home someone else could write to; checked once, when a command starts. */
export function checkBottleHome(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): void {
  const problem = homeProblem(bottleHome(env), uid);
  if (problem) throw new UsageError(problem);
}
