import { posix } from 'node:path';

/**
 * The agent can write to its working folder (bind-mounted read-write, or
 * copied in and, for a bind mount, its changes are the user's). A folder that
 * holds the manifest (whose token_command runs on the host at the next start),
 * the state folder (other bottles' state, the embedded Redis socket), a
 * Dockerfile folder, a skill, a prompt, a token file or an ssh key would let
 * the agent change what the host runs or reads next, so it is refused, and
 * so is a folder inside one of those folders. Pure:
 * the caller (src/cli/workdir-guard.ts) resolves every path to its real path.
 */
export interface ProtectedPath {
  /** Real path (symlinks resolved). */
  path: string;
  /** What it is, for the message: "the manifest", "the state folder", ... */
  what: string;
}

export interface WorkdirFacts {
  /** Real path of the working folder. */
  workdir: string;
  /** Real path of the user's home folder. */
  home: string;
  protectedPaths: readonly ProtectedPath[];
}

/** Equal to `path`, or a folder `path` lies under. */
function holds(folder: string, path: string): boolean {
  const relative = posix.relative(folder, path);
  return relative === '' || (relative !== '..' && !relative.startsWith('../') && !posix.isAbsolute(relative));
}

/** The one-line refusal for a working folder the agent must not get, or undefined when it may. */
export function workdirRefusal(facts: WorkdirFacts): string | undefined {
  const reason = refusalReason(facts);
  if (!reason) return undefined;
  return (
    `refusing to give the agent ${facts.workdir}: ${reason}, and the agent can write to its working folder; ` +
    'run it from a project folder (cd into one, or pass --cwd DIR)'
  );
}

function refusalReason({ workdir, home, protectedPaths }: WorkdirFacts): string | undefined {
  if (workdir === '/') return 'it is the root folder';
  if (workdir === home) return 'it is your home folder';
  if (holds(workdir, home)) return `it holds your home folder ${home}`;
  const held = protectedPaths.find((p) => holds(workdir, p.path));
  if (held) return held.path === workdir ? `it is ${held.what}` : `it holds ${held.what} ${held.path}`;
  // Inside a protected folder is as bad: files written in a Dockerfile folder or a skill go into the next
  // image or bottle, and the state folder holds other bottles' state.
  const inside = protectedPaths.find((p) => holds(p.path, workdir));
  return inside ? `it is inside ${inside.what} ${inside.path}` : undefined;
}
