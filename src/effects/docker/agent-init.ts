import type Docker from 'dockerode';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeFailure } from '../../shared/errors.js';
import { repoRoot } from '../../images/build-context.js';
import type { ArchiveEntry } from './provision.js';

/**
 * The agent container's first program (src/agent-init/wait-for-proxy.c,
 * built static into dist/agent-init): it waits until the egress proxy in the
 * agent's environment accepts connections, then execs the agent's command in
 * its place. That lets the agent's container start alongside the gateway's
 * without its first connection ever being refused.
 */

export const AGENT_INIT_PATH = '/usr/local/lib/claude-bottle/wait-for-proxy';

function agentInitBinary(): string {
  const binary = join(repoRoot(), 'dist', 'agent-init', 'wait-for-proxy');
  if (!existsSync(binary))
    throw new RuntimeFailure(`agent init program missing: run npm run build (expected ${binary})`);
  return binary;
}

/** The program's archive entry: root-owned, executable by the agent's user, not writable by it. */
export function agentInitEntry(): ArchiveEntry {
  const source = agentInitBinary();
  return { type: 'host-file', path: AGENT_INIT_PATH, mode: 0o755, uid: 0, gid: 0, source, size: statSync(source).size };
}

export interface AgentLaunch {
  /** The init program, then the image's own entrypoint. */
  entrypoint: string[];
  /** What follows it: the plan's command, or the image's when the plan has none. */
  cmd: string[];
}

/**
 * What the agent container runs. Setting an entrypoint at create time drops
 * the image's, and its default command with it, so both are carried over here.
 */
export async function agentLaunch(docker: Docker, imageTag: string, command: readonly string[]): Promise<AgentLaunch> {
  const config = (await docker.getImage(imageTag).inspect()).Config;
  const imageEntrypoint = config.Entrypoint
    ? Array.isArray(config.Entrypoint)
      ? config.Entrypoint
      : [config.Entrypoint]
    : [];
  const cmd = command.length > 0 ? [...command] : (config.Cmd ?? []);
  return { entrypoint: [AGENT_INIT_PATH, ...imageEntrypoint], cmd };
}
