import { statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { repoRoot } from '../../images/build-context.js';
import { RuntimeFailure } from '../../shared/errors.js';
import { AGENT_OWNER, ownedDirectories, type ArchiveEntry, type ProvisionTargets } from './provision.js';

/**
 * The agent's side of capability requests, shipped in every bottle whatever
 * its image: the `bottle-request` command (bash, and curl when the image has it; root-owned, so the
 * agent cannot change what it runs) and the Claude Code skill that tells the
 * agent when and how to use it. Copied in after a restored transcript, so a
 * resumed bottle gets this version's skill rather than the one it saved.
 */
export const BOTTLE_REQUEST_PATH = '/usr/local/bin/bottle-request';
export const BOTTLE_REQUEST_SKILL = 'bottle-request';

export function shipped(relative: string): { source: string; size: number } {
  const source = join(repoRoot(), 'images', 'agent', relative);
  try {
    return { source, size: statSync(source).size };
  } catch {
    throw new RuntimeFailure(`claude-bottle is missing ${source}; reinstall it`);
  }
}

export function bottleRequestEntries(targets: ProvisionTargets, owner = AGENT_OWNER): ArchiveEntry[] {
  const script = shipped('bottle-request');
  const skill = shipped(join('skills', BOTTLE_REQUEST_SKILL, 'SKILL.md'));
  const skillDir = posix.join(targets.skillsDir, BOTTLE_REQUEST_SKILL);
  return [
    { type: 'host-file', path: BOTTLE_REQUEST_PATH, mode: 0o755, uid: 0, gid: 0, ...script },
    ...ownedDirectories(skillDir, targets.home, owner),
    { type: 'host-file', path: posix.join(skillDir, 'SKILL.md'), mode: 0o644, ...owner, ...skill },
  ];
}
