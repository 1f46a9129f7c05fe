import { initialTransition, transition } from 'xstate';
import type { EffectRequest } from '../effects/types.js';
import { isObservation, type LifecycleEvent } from '../events/schema.js';
import { bottleMachine, type EffectIntent } from './bottle.machine.js';
import type { BottleContext, BottleState } from './context.js';

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
  /** Effects requested by folding this event (empty for ignored events and observations). */
  effects: EffectRequest[];
}

type MachineSnapshot = ReturnType<typeof bottleMachine.resolveState>;

function fromSnapshot(snapshot: MachineSnapshot, seq: number): BottleState {
  // Flat machine: the state value is always a plain state name.
  return { value: snapshot.value as string, context: { ...snapshot.context, seq }, seq };
}

function toSnapshot(state: BottleState): MachineSnapshot {
  return bottleMachine.resolveState({ value: state.value, context: state.context });
}

export function initialBottleState(identity: string): BottleState {
  const [snapshot] = initialTransition(bottleMachine, { identity });
  return fromSnapshot(snapshot, 0);
}

function effectsOf(actions: ReadonlyArray<{ type: string; params: unknown }>, context: BottleContext, seq: number): EffectRequest[] {
  const effects: EffectRequest[] = [];
  for (const action of actions) {
    if (action.type !== 'requestEffect') continue;
    const intent = action.params as EffectIntent;
    effects.push({ kind: intent.kind, identity: context.identity, causedBySeq: seq, params: intent.params });
  }
  return effects;
}

function checkNext(lastSeq: number, event: LifecycleEvent): void {
  if (event.seq !== lastSeq + 1) throw new HistoryGapError(lastSeq + 1, event.seq);
}

function observe(context: BottleContext, event: LifecycleEvent): BottleContext {
  const n = event.type === 'egress.allowed' || event.type === 'egress.denied' ? event.data.n : 0;
  return { ...context, seq: event.seq, lastEgressDecision: Math.max(context.lastEgressDecision, n) };
}

/**
 * Folds one event. An event at or below `state.seq` was already folded and
 * changes nothing (so a retried worker job is harmless); one that skips a seq
 * throws HistoryGapError, because the log is dense by construction.
 */
export function foldEvent(state: BottleState, event: LifecycleEvent): FoldResult {
  if (event.seq <= state.seq) return { state, effects: [] };
  checkNext(state.seq, event);
  if (isObservation(event.type)) {
    return { state: { value: state.value, context: observe(state.context, event), seq: event.seq }, effects: [] };
  }
  const [next, actions] = transition(bottleMachine, toSnapshot(state), event);
  return { state: fromSnapshot(next, event.seq), effects: effectsOf(actions, next.context, event.seq) };
}

/**
 * Folds a whole history from the initial state. Returns the final state and
 * the effects requested by the last event. Keeps the xstate snapshot between
 * lifecycle events and batches runs of observations, so long egress-heavy
 * histories fold at memory speed.
 */
export function foldHistory(identity: string, events: readonly LifecycleEvent[]): FoldResult {
  let [snapshot] = initialTransition(bottleMachine, { identity });
  let seq = 0;
  let effects: EffectRequest[] = [];
  // Observations since the last lifecycle event, applied lazily to the context.
  let observedSeq = 0;
  let lastEgressDecision = snapshot.context.lastEgressDecision;

  for (const event of events) {
    checkNext(seq, event);
    seq = event.seq;
    if (event.type === 'egress.allowed' || event.type === 'egress.denied') {
      observedSeq = seq;
      if (event.data.n > lastEgressDecision) lastEgressDecision = event.data.n;
      effects = [];
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
    effects = effectsOf(actions, snapshot.context, seq);
  }
  const state = fromSnapshot(snapshot, seq);
  if (observedSeq !== 0) state.context.lastEgressDecision = lastEgressDecision;
  return { state, effects };
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
