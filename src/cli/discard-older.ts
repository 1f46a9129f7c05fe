import { stateName } from '../machines/index.js';
import { currentState } from '../engine/bottle-log.js';
import { UsageError } from '../shared/errors.js';
import type { CliIO } from '../shared/io.js';
import { confirmDiscard, discardAll, type DiscardTarget } from './discard.js';
import type { Session } from './session.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `7d`, `12h`, `30m`, `90s`, `2w` as milliseconds; anything else is a usage error. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!match) throw new UsageError(`--discard-older-than takes a duration like 7d, 12h, 30m, 90s or 2w; got ${text}`);
  return Number(match[1]) * UNIT_MS[match[2]];
}

/** How long ago, roughly, for the listing. */
function age(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', UNIT_MS.d],
    ['h', UNIT_MS.h],
    ['m', UNIT_MS.m],
  ];
  for (const [unit, size] of units) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return `${Math.floor(ms / 1000)}s`;
}

/**
 * `bottle cleanup --discard-older-than DURATION`: the preserved and failed bottles whose last event is
 * older than that are listed, then (unless --dry-run, and once confirmed) discarded as `bottle rm` does.
 */
export async function discardOlderThan(
  session: Session,
  opts: { olderThanMs: number; label: string; dryRun: boolean; yes?: boolean; now?: number },
  io: CliIO,
): Promise<number> {
  const now = opts.now ?? Date.now();
  const found: Array<DiscardTarget & { age: number }> = [];
  for (const entry of await session.log.listBottles()) {
    const { state, lastSeq } = await currentState(session.log, entry.identity);
    if (lastSeq === 0 || !['preserved', 'failed'].includes(stateName(state))) continue;
    const [last] = await session.log.read(entry.identity, lastSeq, lastSeq);
    const since = now - Date.parse(last?.at ?? entry.started_at);
    if (since > opts.olderThanMs) found.push({ identity: entry.identity, state, running: false, age: since });
  }
  if (found.length === 0) {
    io.stdout(`no preserved or failed bottle is older than ${opts.label}`);
    return 0;
  }
  const verb = opts.dryRun ? 'would discard' : 'to discard';
  for (const t of found) io.stdout(`${verb} ${t.identity} (${stateName(t.state)} ${age(t.age)} ago)`);
  if (opts.dryRun) return 0;
  if (
    !(await confirmDiscard(
      found,
      { yes: opts.yes ?? false, command: 'cleanup --discard-older-than', listed: true },
      io,
    ))
  ) {
    io.stderr('nothing discarded');
    return 0;
  }
  return discardAll(session, found, io);
}
