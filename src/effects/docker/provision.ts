import type Docker from 'dockerode';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pack as tarPack, type Pack } from 'tar-stream';
import { AGENT_HOME } from '../../plan/agent-env.js';
import { CLAUDE_GLOBAL_CONFIG_TARGET, CLAUDE_USER_SETTINGS_TARGET, claudeStateFiles } from '../../plan/claude-state.js';
import { canaryFiles } from '../../plan/canaries.js';
import type { Canaries } from '../../plan/schema.js';
import { SSH_AGENT_BRIDGE_PATH, sshAgentBridgeScript, sshClientConfig } from '../../plan/ssh-config.js';
import type { BottlePlan } from '../../plan/schema.js';
import { readUserClaudeFiles, userClaudeFiles } from '../../shared/claude-files.js';
import { PermanentEffectError } from '../types.js';

/**
 * Files copied into a created (not yet started) container with putArchive.
 * Everything goes in one tar per call, rooted at `/`, with explicit owner and
 * mode on every entry: Docker creates missing parents as root, so every
 * folder the agent must write to is listed as its own entry.
 */
export type ArchiveEntry =
  | { type: 'directory'; path: string; mode: number; uid: number; gid: number }
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; content: string | Buffer }
  | { type: 'host-file'; path: string; mode: number; uid: number; gid: number; source: string; size: number }
  | { type: 'symlink'; path: string; uid: number; gid: number; linkname: string };

export interface Owner {
  uid: number;
  gid: number;
}

/** Absolute container path -> tar name relative to the extraction root. */
function tarName(absolute: string, root: string): string {
  const normal = posix.normalize(absolute);
  if (!normal.startsWith('/') || normal.split('/').includes('..'))
    throw new Error(`not an absolute container path: ${absolute}`);
  const prefix = root === '/' ? '/' : `${posix.normalize(root)}/`;
  if (!normal.startsWith(prefix)) throw new Error(`${absolute} is not below the extraction root ${root}`);
  return normal.slice(prefix.length);
}

/** Directory entries for `dir` and each of its parents strictly below `ownedFrom`'s parent. */
export function ownedDirectories(dir: string, ownedFrom: string, owner: Owner, mode = 0o755): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  let current = posix.normalize(dir);
  const stop = posix.dirname(posix.normalize(ownedFrom));
  while (current !== stop && current !== '/' && current.startsWith(posix.normalize(ownedFrom))) {
    entries.unshift({ type: 'directory', path: current, mode, uid: owner.uid, gid: owner.gid });
    current = posix.dirname(current);
  }
  return entries;
}

/**
 * Walks a host folder into entries below `target`. Symlinks are copied as
 * links (never followed), so nothing outside the folder is read; sockets and
 * fifos are skipped.
 */
export async function hostTreeEntries(
  source: string,
  target: string,
  owner: Owner,
  opts: { exclude?: (rel: string) => boolean } = {},
): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  const walk = async (hostPath: string, containerPath: string, rel: string): Promise<void> => {
    const s = await lstat(hostPath);
    if (s.isSymbolicLink()) {
      entries.push({
        type: 'symlink',
        path: containerPath,
        uid: owner.uid,
        gid: owner.gid,
        linkname: await readlink(hostPath),
      });
    } else if (s.isDirectory()) {
      entries.push({ type: 'directory', path: containerPath, mode: s.mode & 0o7777, uid: owner.uid, gid: owner.gid });
      const names = (await readdir(hostPath)).sort();
      for (const name of names) {
        const childRel = rel ? `${rel}/${name}` : name;
        if (opts.exclude?.(childRel)) continue;
        await walk(join(hostPath, name), posix.join(containerPath, name), childRel);
      }
    } else if (s.isFile()) {
      entries.push({
        type: 'host-file',
        path: containerPath,
        mode: s.mode & 0o777,
        uid: owner.uid,
        gid: owner.gid,
        source: hostPath,
        size: s.size,
      });
    }
  };
  try {
    await walk(source, target, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new PermanentEffectError(`cannot copy ${source} into the bottle: it does not exist`);
    throw err;
  }
  return entries;
}

/** Streams entries as a tar; host files are read one at a time, never held whole in memory. */
export function packEntries(entries: ArchiveEntry[], root = '/'): Pack {
  const pack = tarPack();
  (async () => {
    for (const e of entries) {
      const base = { name: tarName(e.path, root), uid: e.uid, gid: e.gid, mtime: new Date() };
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error | null) => (err ? reject(err) : resolve());
        switch (e.type) {
          case 'directory':
            pack.entry({ ...base, type: 'directory', mode: e.mode }, done);
            break;
          case 'symlink':
            pack.entry({ ...base, type: 'symlink', linkname: e.linkname, mode: 0o777 }, done);
            break;
          case 'file':
            pack.entry(
              { ...base, type: 'file', mode: e.mode },
              typeof e.content === 'string' ? Buffer.from(e.content) : e.content,
              done,
            );
            break;
          case 'host-file': {
            const sink = pack.entry({ ...base, type: 'file', mode: e.mode, size: e.size }, done);
            createReadStream(e.source).on('error', reject).pipe(sink);
            break;
          }
        }
      });
    }
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack;
}

/**
 * Writes the entries into the container; works on created and stopped
 * containers. `root` is where Docker extracts: a container with a read-only
 * root filesystem only accepts archives extracted inside one of its volumes.
 */
export async function putEntries(container: Docker.Container, entries: ArchiveEntry[], root = '/'): Promise<void> {
  if (entries.length === 0) return;
  await container.putArchive(packEntries(entries, root) as unknown as NodeJS.ReadableStream, { path: root });
}

export interface ProvisionTargets {
  home: string;
  promptTarget: string;
  skillsDir: string;
  sshDir: string;
  claudeDir: string;
}

export const AGENT_OWNER: Owner = { uid: 1000, gid: 1000 };

/** The prompt file, readable by the agent. */
export async function promptEntries(
  promptSource: string,
  targets: ProvisionTargets,
  owner = AGENT_OWNER,
): Promise<ArchiveEntry[]> {
  const [file] = await hostTreeEntries(promptSource, targets.promptTarget, owner);
  if (file.type !== 'host-file') throw new PermanentEffectError(`prompt ${promptSource} is not a regular file`);
  return [...ownedDirectories(posix.dirname(targets.promptTarget), targets.home, owner), { ...file, mode: 0o644 }];
}

/** Each skill folder becomes `<skillsDir>/<name>/`. */
export async function skillEntries(
  skills: Array<{ name: string; source: string }>,
  targets: ProvisionTargets,
  owner = AGENT_OWNER,
): Promise<ArchiveEntry[]> {
  if (skills.length === 0) return [];
  const entries = ownedDirectories(targets.skillsDir, targets.home, owner);
  for (const skill of skills) {
    if (!/^[A-Za-z0-9._-]+$/.test(skill.name) || skill.name.startsWith('.'))
      throw new PermanentEffectError(`invalid skill name ${JSON.stringify(skill.name)}`);
    entries.push(...(await hostTreeEntries(skill.source, posix.join(targets.skillsDir, skill.name), owner)));
  }
  return entries;
}

/**
 * SSH without keys: `~/.ssh/config` (0600, folder 0700) sends ssh through the
 * gateway, and the bridge script (root's, run before the agent's command) serves
 * the gateway's ssh-agent at SSH_AUTH_SOCK. No key is read or written here.
 */
export function sshEntries(
  ssh: ReadonlyArray<{ Host: string }>,
  targets: ProvisionTargets,
  gatewayIp: string,
  owner = AGENT_OWNER,
): ArchiveEntry[] {
  if (ssh.length === 0) return [];
  for (const entry of ssh) {
    if (!/^[^\s"]+$/.test(entry.Host)) throw new PermanentEffectError(`invalid ssh Host ${JSON.stringify(entry.Host)}`);
  }
  const config = sshClientConfig(
    ssh.map((entry) => entry.Host),
    gatewayIp,
  );
  const bridge = sshAgentBridgeScript(gatewayIp);
  return [
    ...ownedDirectories(posix.dirname(targets.sshDir), targets.home, owner),
    { type: 'directory', path: targets.sshDir, mode: 0o700, ...owner },
    { type: 'file', path: posix.join(targets.sshDir, 'config'), mode: 0o600, ...owner, content: config },
    // Beside the init program: root's, so the agent can run it but not change it.
    { type: 'file', path: SSH_AGENT_BRIDGE_PATH, mode: 0o755, uid: 0, gid: 0, content: bridge },
  ];
}

/** The launch's decoy credentials (src/plan/canaries.ts) where an agent hunting secrets would look, the agent's own. */
export function canaryEntries(
  canaries: Canaries | undefined,
  targets: ProvisionTargets,
  owner = AGENT_OWNER,
): ArchiveEntry[] {
  if (!canaries) return [];
  return canaryFiles(canaries).flatMap(({ path, content }) => [
    ...ownedDirectories(posix.dirname(path), targets.home, owner, 0o700),
    { type: 'file' as const, path, mode: 0o600, ...owner, content },
  ]);
}

/** A preserved transcript folder restored as the agent's `~/.claude`. */
export async function transcriptEntries(
  transcriptDir: string,
  targets: ProvisionTargets,
  owner = AGENT_OWNER,
): Promise<ArchiveEntry[]> {
  return [
    ...ownedDirectories(posix.dirname(targets.claudeDir), targets.home, owner),
    ...(await hostTreeEntries(transcriptDir, targets.claudeDir, owner)),
  ];
}

/** The working folder copied in (with .git) for copy_cwd bottles, at its own path, owned by the agent. */
export async function cwdEntries(source: string, cwd: string, owner = AGENT_OWNER): Promise<ArchiveEntry[]> {
  return hostTreeEntries(source, cwd, owner);
}

/**
 * The gateway's interception CA for the agent to trust: the CA alone (for
 * NODE_EXTRA_CA_CERTS) and the image's system bundle with the CA appended
 * (for tools that read one bundle). Readable, not writable, by the agent.
 */
export function trustEntries(
  caPem: string,
  systemBundle: Buffer | undefined,
  paths: { home: string; caTarget: string; bundleTarget: string },
  owner = AGENT_OWNER,
): ArchiveEntry[] {
  const ca = caPem.endsWith('\n') ? caPem : `${caPem}\n`;
  const system = systemBundle?.toString('utf8') ?? '';
  const bundle = system === '' || system.endsWith('\n') ? `${system}${ca}` : `${system}\n${ca}`;
  return [
    ...ownedDirectories(posix.dirname(paths.caTarget), paths.home, owner),
    { type: 'file', path: paths.caTarget, mode: 0o444, uid: 0, gid: 0, content: ca },
    { type: 'file', path: paths.bundleTarget, mode: 0o444, uid: 0, gid: 0, content: bundle },
  ];
}

const MAX_RESTORED_SETTINGS_BYTES = 1024 * 1024;

/**
 * A restored file the bottle wrote: undefined only when absent. Anything but a
 * small regular file (a link could point anywhere on this host) reads as '',
 * which leaves it as it is.
 */
async function readRestoredText(path: string): Promise<string | undefined> {
  try {
    const s = await lstat(path);
    if (!s.isFile() || s.size > MAX_RESTORED_SETTINGS_BYTES) return '';
    return await readFile(path, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : '';
  }
}

/**
 * The agent's Claude Code state (src/plan/claude-state.ts says what and why),
 * merged into what the image ships (`globalConfig`, `settings`) and what a restored
 * transcript holds (`restoredTranscript`, the host folder copied to `~/.claude`).
 * The user's own files are read for their display preferences only.
 */
export async function claudeStateEntries(
  plan: Pick<BottlePlan, 'cwd' | 'credentials' | 'claude_preferences'>,
  existing: { globalConfig?: string; settings?: string; restoredTranscript?: string },
  user = userClaudeFiles(),
  owner = AGENT_OWNER,
): Promise<ArchiveEntry[]> {
  // The CLI read them on its machine; a plan from before that names none, so this machine's are used.
  const preferences = plan.claude_preferences ?? (await readUserClaudeFiles(user));
  const files = claudeStateFiles({
    plan,
    userGlobalConfig: preferences.global,
    userSettings: preferences.settings,
    existingGlobalConfig: existing.globalConfig,
    existingSettings:
      (existing.restoredTranscript
        ? await readRestoredText(join(existing.restoredTranscript, posix.basename(CLAUDE_USER_SETTINGS_TARGET)))
        : undefined) ?? existing.settings,
  });
  const entries: ArchiveEntry[] = [
    { type: 'file', path: CLAUDE_GLOBAL_CONFIG_TARGET, mode: 0o600, ...owner, content: files.globalConfig },
  ];
  if (files.settings !== undefined) {
    entries.push(...ownedDirectories(posix.dirname(CLAUDE_USER_SETTINGS_TARGET), AGENT_HOME, owner), {
      type: 'file',
      path: CLAUDE_USER_SETTINGS_TARGET,
      mode: 0o600,
      ...owner,
      content: files.settings,
    });
  }
  return entries;
}
