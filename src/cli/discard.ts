import type { LifecycleEvent } from '../events/schema.js';
import { accepts, bottleStatus, stateName, type BottleState } from '../machines/index.js';
import { currentState } from '../engine/bottle-log.js';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import type { CliIO } from '../shared/io.js';
import { operator } from './capability-decision.js';
import { askOnTerminal } from './confirm.js';
import { describeEvent } from './render-event.js';
import { commandAndFollow, type Session } from './session.js';

/** A bottle `bottle rm` or `cleanup --discard-older-than` is about to throw away, as it stands now. */
export interface DiscardTarget {
  identity: string;
  state: BottleState;
  /** It still runs (or launches): only --force discards it, after stopping it. */
  running: boolean;
}

const KEPT = new Set(['preserved', 'failed']);
const OVER = new Set(['cleaned', 'discarded']);

/** Checks one bottle can be discarded: it exists, is not over, and runs only when --force allows stopping it. */
export async function discardTarget(session: Session, identity: string, force: boolean): Promise<DiscardTarget> {
  if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
  const { state } = await currentState(session.log, identity);
  const name = stateName(state);
  if (OVER.has(name)) throw new RuntimeFailure(`${identity} is ${name}: there is nothing left to discard`);
  const running = !KEPT.has(name);
  if (running && !force)
    throw new UsageError(
      `${identity} is ${bottleStatus(state)}; stop it first (bottle stop ${identity}) ` +
        'or pass --force to stop and discard it',
    );
  return { identity, state, running };
}

/**
 * Asks `[y/N]` before anything is thrown away (`--yes` skips); without a terminal there is nobody to ask,
 * so the command refuses. False when the answer is no.
 */
export async function confirmDiscard(
  targets: DiscardTarget[],
  opts: { yes: boolean; command: string; listed?: boolean },
  io: CliIO,
): Promise<boolean> {
  if (opts.yes) return true;
  if (!opts.listed) for (const t of targets) io.stderr(`  ${t.identity}  ${bottleStatus(t.state)}`);
  if (!io.isTTY)
    throw new UsageError(`no terminal to confirm the discard on; pass --yes to ${opts.command} without asking`);
  const stops = targets.filter((t) => t.running).length;
  const question =
    `Discard ${targets.length} bottle(s)${stops > 0 ? `, stopping ${stops} first` : ''}? ` +
    'Their state folders (transcripts included) and the images only they used are removed for good. [y/N] ';
  return /^y(es)?$/i.test((await askOnTerminal(question)).trim());
}

const atRest = (ev: LifecycleEvent) => ['bottle.preserved', 'bottle.cleaned', 'bottle.failed'].includes(ev.type);
const discardSettled = (ev: LifecycleEvent) =>
  ev.type === 'bottle.discarded' || (ev.type === 'effect.failed' && ev.data.effect === 'discard' && ev.data.permanent);

/**
 * Discards one bottle through its machine: a running one is stopped first, as `bottle stop` does (its
 * state is preserved, then thrown away); the worker's discard effect removes what the bottle left and
 * appends `bottle.discarded`. Returns the event that settled it.
 */
export async function discardBottle(session: Session, target: DiscardTarget, io: CliIO): Promise<LifecycleEvent> {
  const { identity } = target;
  const progress = (ev: LifecycleEvent) => io.stderr(`  ${describeEvent(ev, identity)}`);
  const say = (line: string) => io.stderr(line);
  if (target.running) {
    const { state } = await currentState(session.log, identity);
    const stop = { type: 'bottle.stop_requested', data: { by: operator() } } as const;
    const stopped = accepts(state, stop)
      ? await commandAndFollow(session, identity, stop, progress, atRest, { say })
      : await session.follow(identity, state.seq, progress, atRest, { say });
    if (stopped?.type === 'bottle.cleaned') return stopped;
  }
  const command = { type: 'bottle.discard_requested', data: { by: operator() } } as const;
  const end = await commandAndFollow(session, identity, command, progress, discardSettled, { say });
  if (!end) throw new RuntimeFailure(`${identity}: the discard did not finish; see bottle events ${identity}`);
  return end;
}

/** Discards each target in turn, saying what became of each; 1 when any discard failed. */
export async function discardAll(session: Session, targets: DiscardTarget[], io: CliIO): Promise<number> {
  let failed = 0;
  for (const target of targets) {
    const end = await discardBottle(session, target, io);
    if (end.type === 'bottle.discarded' || end.type === 'bottle.cleaned') {
      io.stdout(`discarded ${target.identity}`);
    } else {
      failed++;
      io.stderr(`${target.identity}: ${describeEvent(end, target.identity)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}
