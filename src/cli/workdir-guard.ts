import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { LoadedManifest } from '../manifest/load.js';
import { workdirRefusal, type ProtectedPath } from '../plan/workdir-guard.js';
import { UsageError } from '../shared/errors.js';
import { bottleHome } from '../shared/paths.js';

/**
 * The real path of `path`; for a path that does not exist (yet), the real
 * path of its nearest existing ancestor with the rest appended, so a state
 * folder still to be created or a key behind a symlinked folder is compared
 * where it will really be.
 */
function realPathOf(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(realPathOf(parent), basename(absolute));
  }
}

/** Everything in the manifest (every bottle and agent, not just this one) the agent must not be able to write. */
export function protectedPaths(loaded: LoadedManifest, env: NodeJS.ProcessEnv = process.env): ProtectedPath[] {
  const listed: ProtectedPath[] = [
    { path: bottleHome(env), what: 'the claude-bottle state folder (CLAUDE_BOTTLE_HOME)' },
    { path: loaded.path, what: 'the manifest' },
  ];
  for (const bottle of loaded.manifest.bottles) {
    const of = `bottle ${bottle.name}`;
    if (bottle.dockerfile) listed.push({ path: dirname(bottle.dockerfile), what: `${of}'s Dockerfile folder` });
    for (const route of bottle.cred_proxy.routes) {
      if (route.token_file) listed.push({ path: route.token_file, what: `a token_file of ${of}` });
    }
    for (const entry of bottle.ssh) listed.push({ path: entry.IdentityFile, what: `an ssh key of ${of}` });
  }
  for (const agent of loaded.manifest.agents) {
    if (agent.prompt) listed.push({ path: agent.prompt, what: `agent ${agent.name}'s prompt` });
    for (const skill of agent.skills) listed.push({ path: skill, what: `a skill of agent ${agent.name}` });
  }
  return listed.map((p) => ({ ...p, path: realPathOf(p.path) }));
}

/**
 * `start` and `resume` call this before anything is created: exit 2 when the
 * working folder is one the agent must not get (see src/plan/workdir-guard.ts).
 * A folder that does not exist is left to the plan, which says so.
 */
export function refuseUnsafeWorkdir(
  workdir: string,
  loaded: LoadedManifest,
  env: NodeJS.ProcessEnv = process.env,
): void {
  let real: string;
  try {
    real = realpathSync(resolve(workdir));
  } catch {
    return;
  }
  const home = realPathOf(homedir());
  const refusal = workdirRefusal({ workdir: real, home, protectedPaths: protectedPaths(loaded, env) });
  if (refusal) throw new UsageError(refusal);
}
