import { initialTransition, transition } from 'xstate';
import { isObservationEvent, type LifecycleEvent } from '../events/schema.js';
import { bottleMachine } from './bottle.machine.js';
import type { EffectIntent } from './effect-requests.js';
import { MACHINE_VERSION, type BottleState } from './context.js';
import { settles, type EffectRequest } from './effects.js';

/**
 * Folding events into a BottleState with xstate's pure `transition()`: no
 * action runs, effects come back as data. Observations (egress decisions)
 * never change the lifecycle, so they only advance `seq` and skip the machine.
 */

export class HistoryGapError extends Error {
  constructor(
    readonly expectedSeq: number,
    readonly actualSeq: number,
  ) {
    super(`event history has a gap: expected seq ${expectedSeq}, got ${actualSeq}`);
    this.name = 'HistoryGapError';
  }
}

export interface FoldResult {
  state: BottleState;
  /** Effects requested by the last event folded (empty for ignored events and observations). */
  effects: EffectRequest[];
}

type MachineSnapshot = ReturnType<typeof bottleMachine.resolveState>;

function fromSnapshot(snapshot: MachineSnapshot, seq: number): BottleState {
  return { machine: MACHINE_VERSION, value: snapshot.value, context: { ...snapshot.context, seq }, seq };
}

export function toSnapshot(state: BottleState): MachineSnapshot {
  return bottleMachine.resolveState({ value: state.value, context: state.context });
}

export function initialBottleState(identity: string): BottleState {
  const [snapshot] = initialTransition(bottleMachine, { identity });
  return fromSnapshot(snapshot, 0);
}

function effectsOf(
  actions: ReadonlyArray<{ type: string; params: unknown }>,
  identity: string,
  seq: number,
): EffectRequest[] {
  const effects: EffectRequest[] = [];
  for (const action of actions) {
    if (action.type !== 'requestEffect') continue;
    const intent = action.params as EffectIntent;
    effects.push({ kind: intent.kind, identity, causedBySeq: seq, params: intent.params } as EffectRequest);
  }
  return effects;
}

/**
 * The one fold: applies `events` (which must continue `state` densely) and
 * calls `onStep` with each lifecycle event and the effects its fold
 * requested. An event at or below `state.seq` was already folded and is
 * skipped, so a retried worker job is harmless; one that skips a seq throws
 * HistoryGapError, because the log is dense by construction. The xstate
 * snapshot is kept between events and runs of observations only touch the
 * context once, so long egress-heavy histories fold at memory speed.
 */
export function foldEvents(
  state: BottleState,
  events: readonly LifecycleEvent[],
  onStep?: (event: LifecycleEvent, effects: EffectRequest[]) => void,
): BottleState {
  let snapshot = toSnapshot(state);
  let seq = state.seq;
  const identity = state.context.identity;
  let lastEgressDecision = state.context.lastEgressDecision;
  // Observations since the last lifecycle event, applied to the context lazily.
  let observedSeq = 0;
  for (const event of events) {
    if (event.seq <= seq) continue;
    if (event.seq !== seq + 1) throw new HistoryGapError(seq + 1, event.seq);
    seq = event.seq;
    if (isObservationEvent(event)) {
      observedSeq = seq;
      // A build gateway numbers its own decisions; only the bottle's gateway's count for its watcher.
      if (event.type !== 'build.egress' && event.data.n > lastEgressDecision) lastEgressDecision = event.data.n;
      continue;
    }
    if (observedSeq !== 0) {
      snapshot = bottleMachine.resolveState({
        value: snapshot.value,
        context: { ...snapshot.context, seq: observedSeq, lastEgressDecision },
      });
      observedSeq = 0;
    }
    const [next, actions] = transition(bottleMachine, snapshot, event);
    snapshot = next;
    lastEgressDecision = snapshot.context.lastEgressDecision;
    onStep?.(event, effectsOf(actions, identity, seq));
  }
  const folded = fromSnapshot(snapshot, seq);
  folded.context.lastEgressDecision = lastEgressDecision;
  return folded;
}

/** Folds one event: the new state and the effects it requested. */
export function foldEvent(state: BottleState, event: LifecycleEvent): FoldResult {
  let effects: EffectRequest[] = [];
  const next = foldEvents(state, [event], (_event, requested) => (effects = requested));
  return { state: next, effects };
}

/** Folds a whole history from the initial state: the final state and the effects its last event requested. */
export function foldHistory(identity: string, events: readonly LifecycleEvent[]): FoldResult {
  let effects: EffectRequest[] = [];
  const state = foldEvents(initialBottleState(identity), events, (event, requested) => {
    effects = requested;
  });
  // An observation after the last lifecycle event requested nothing.
  if (events.length > 0 && events[events.length - 1].seq !== lastLifecycleSeq(events)) effects = [];
  return { state, effects };
}

function lastLifecycleSeq(events: readonly LifecycleEvent[]): number {
  for (let i = events.length - 1; i >= 0; i--) {
    if (!isObservationEvent(events[i])) return events[i].seq;
  }
  return 0;
}

/**
 * The effects a history has requested that no later event reports done:
 * what a worker must (re)enqueue to carry an unfinished bottle on. Effects
 * are idempotent, and their job ids deterministic, so enqueuing one that is
 * in fact still queued or running changes nothing.
 */
export function pendingEffects(identity: string, events: readonly LifecycleEvent[]): EffectRequest[] {
  let pending: EffectRequest[] = [];
  foldEvents(initialBottleState(identity), events, (event, requested) => {
    pending = pending.filter((effect) => !settles(effect.kind, event));
    // A new request of a kind replaces an older one of that kind.
    pending = [...pending.filter((effect) => !requested.some((r) => r.kind === effect.kind)), ...requested];
  });
  return pending;
}

/** Structural equality as JSON sees it: key order and undefined-valued keys do not matter. */
export function statesEqual(a: BottleState, b: BottleState): boolean {
  return jsonEqual(a, b);
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bArr = b as unknown[];
    return a.length === bArr.length && a.every((item, i) => jsonEqual(item, bArr[i]));
  }
  const aObj = a as Record<string, unknown>;
  const bObj = b as Record<string, unknown>;
  const aKeys = Object.keys(aObj).filter((k) => aObj[k] !== undefined);
  const bKeys = Object.keys(bObj).filter((k) => bObj[k] !== undefined);
  if (aKeys.length !== bKeys.length) return false;
  return aKeys.every((k) => Object.prototype.hasOwnProperty.call(bObj, k) && jsonEqual(aObj[k], bObj[k]));
}
