import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LifecycleEvent } from '../../src/events/schema.js';

/** Finding 21.5's reproduction: what the agent writes before the bottle stops (a 1 GiB sparse file). */
export const BIG_TRANSCRIPT_FILE = 'big.jsonl';
export const MAKE_BIG_TRANSCRIPT = `mkdir -p ~/.claude && truncate -s 1G ~/.claude/${BIG_TRANSCRIPT_FILE}`;

/**
 * What a snapshot made of that file, as the dedicated test (bottle-state) and the escape suite check it: the
 * event naming it skipped, whether it reached the state folder, how much that folder holds, partial copies left.
 */
export function bigTranscriptOutcome(home: string, identity: string, events: LifecycleEvent[]) {
  const snapshot = events.find((e) => e.type === 'transcript.snapshotted');
  const data = (snapshot?.data ?? {}) as { skipped?: Array<{ path: string; bytes: number }> };
  const state = join(home, 'state', identity);
  // Allocated size, so a sparse copy would count too.
  const stateKib = existsSync(state)
    ? Number(execFileSync('du', ['-sk', state], { encoding: 'utf8' }).split('\t')[0])
    : 0;
  return {
    skippedEvent: (data.skipped ?? []).some((s) => s.path === BIG_TRANSCRIPT_FILE && s.bytes === 1024 ** 3),
    copied: existsSync(join(state, 'transcript', BIG_TRANSCRIPT_FILE)),
    stateKib,
    partials: existsSync(state) ? readdirSync(state).filter((n) => n.includes('.partial-')) : [],
  };
}
