import { posix } from 'node:path';

/**
 * The agent can write to its working folder (bind-mounted read-write, or
 * copied in and, for a bind mount, its changes are the user's). A working
 * folder that is, holds or lies inside a protected path would let the agent
 * change what the host runs or reads next, so it is refused:
 * - what the manifest names: the manifest itself (its token_command runs on
 *   the host at the next start), a Dockerfile folder, a skill, a prompt, a
 *   token file, an ssh key; and the state folder (other bottles' state, the
 *   embedded Redis socket);
 * - what runs on the operator's machine: the claude-bottle installation this
 *   command runs from and the Node.js that runs it, every folder on the
 *   operator's PATH, the system folders, the shell start-up files and ~/.ssh.
 * Holding a protected path is as bad as being it (the agent writes it through
 * its parent), and so is lying inside a protected folder (files written in a
 * Dockerfile folder go into the next image, a folder inside /usr/local/bin is
 * still system software) — except for a protected folder's scratch
 * subfolders (/var/tmp), which nothing runs from. Pure: the caller
 * (src/cli/workdir-guard.ts) lists the paths and resolves each to its real path.
 */
export interface ProtectedPath {
  /** Real path (symlinks resolved). */
  path: string;
  /** What it is, for the message: "the manifest", "the state folder", ... */
  what: string;
  /** Real paths of subfolders that are not protected with it: scratch space everyone may write. */
  except?: readonly string[];
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
  const inside = protectedPaths.find(
    (p) => holds(p.path, workdir) && !(p.except ?? []).some((scratch) => holds(scratch, workdir)),
  );
  return inside ? `it is inside ${inside.what} ${inside.path}` : undefined;
}
