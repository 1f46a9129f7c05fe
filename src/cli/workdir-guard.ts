import { readdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { repoRoot } from '../images/build-context.js';
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

/**
 * Folders whose files the system runs or reads as root: programs, libraries, configuration, boot
 * files, root's home, service state and spools, and the kernel's and devices' interfaces. Every
 * top-level lib folder (lib32, lib64, libx32...) counts.
 */
const SYSTEM_FOLDERS = [
  '/etc',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/boot',
  '/root',
  '/proc',
  '/sys',
  '/dev',
  '/run',
  '/var',
];
/** Scratch space inside a system folder: world-writable, and nothing is run from it. */
const SYSTEM_SCRATCH: Readonly<Record<string, readonly string[]>> = { '/var': ['/var/tmp'] };

/** Files a login or interactive shell runs, relative to the home folder (zsh's to ZDOTDIR when set). */
const SHELL_START_UP = ['.profile', '.bashrc', '.bash_profile', '.bash_login', '.bash_logout', '.config/fish'];
const ZSH_START_UP = ['.zshenv', '.zprofile', '.zshrc', '.zlogin', '.zlogout'];

function topLevelLibFolders(): string[] {
  try {
    return readdirSync('/')
      .filter((name) => /^lib/.test(name) && name !== 'lib')
      .map((name) => `/${name}`);
  } catch {
    return [];
  }
}

/**
 * What runs on the operator's machine, outside any manifest: this installation (the
 * package root of the running module, as local-worker.ts's bottleBin finds it), the Node.js
 * running it, every folder on PATH, the system folders, the shell start-up files and ~/.ssh.
 */
export function operatorPaths(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): ProtectedPath[] {
  const realHome = realPathOf(home);
  const listed: ProtectedPath[] = [
    { path: repoRoot(), what: 'the claude-bottle installation this command runs from' },
    // Its dependencies, which the bundle loads at run time, wherever the link points.
    { path: join(repoRoot(), 'node_modules'), what: 'the dependencies of the claude-bottle installation' },
    { path: dirname(process.execPath), what: 'the folder of the Node.js running bottle' },
  ];
  // An empty or relative PATH entry names a folder relative to wherever a command runs; none is one folder.
  for (const folder of (env.PATH ?? '').split(delimiter)) {
    if (isAbsolute(folder)) listed.push({ path: folder, what: 'a folder on your PATH' });
  }
  for (const folder of [...SYSTEM_FOLDERS, ...topLevelLibFolders()]) {
    // Root's home is also root's system folder: when it is the operator's, the home folder rules apply.
    if (realPathOf(folder) === realHome) continue;
    const except = (SYSTEM_SCRATCH[folder] ?? []).map(realPathOf);
    listed.push({ path: folder, what: 'the system folder', ...(except.length > 0 ? { except } : {}) });
  }
  for (const file of SHELL_START_UP) listed.push({ path: join(home, file), what: 'your shell start-up file' });
  for (const file of ZSH_START_UP) {
    listed.push({ path: join(env.ZDOTDIR ?? home, file), what: 'your shell start-up file' });
  }
  listed.push({ path: join(home, '.ssh'), what: 'your ssh folder' });
  return listed.map((p) => ({ ...p, path: realPathOf(p.path) }));
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
  const listed = [...protectedPaths(loaded, env), ...operatorPaths(env)];
  const refusal = workdirRefusal({ workdir: real, home, protectedPaths: listed });
  if (refusal) throw new UsageError(refusal);
}
