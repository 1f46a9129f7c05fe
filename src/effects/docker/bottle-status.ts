import type { ArchiveEntry } from './provision.js';
import { shipped } from './bottle-request.js';
import { BOTTLE_STATUS_PATH } from '../../plan/claude-state.js';

/**
 * The agent's way to say it needs the operator (or works again): the `bottle-status` command,
 * shipped in every bottle whatever its image (bash, and curl when the image has it; root-owned, so
 * the agent cannot change what its hooks run). Claude Code's hooks call it (src/plan/claude-state.ts).
 */
export function bottleStatusEntries(): ArchiveEntry[] {
  return [{ type: 'host-file', path: BOTTLE_STATUS_PATH, mode: 0o755, uid: 0, gid: 0, ...shipped('bottle-status') }];
}
