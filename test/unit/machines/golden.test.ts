import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEvent, type LifecycleEvent } from '../../../src/events/schema.js';
import {
  bottleStatus,
  foldEvent,
  foldHistory,
  initialBottleState,
  statesEqual,
  type BottleState,
} from '../../../src/machines/index.js';

/**
 * Recorded histories must keep folding to what they folded to when they were
 * recorded. If a change makes one of these fail, the change alters the meaning
 * of stored logs: add an upcaster (src/events/upcast.ts) instead of editing the
 * golden files. See test/golden/README.md.
 */
const GOLDEN_DIR = join(import.meta.dirname, '../../golden');

interface Expected {
  /** A state name, or for the parallel launch each region's state. */
  state: string | Record<string, string>;
  status?: string;
  context?: Record<string, unknown>;
  effects_last: string[];
  effects_last_params?: Array<Record<string, unknown>>;
}

const names = readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith('.jsonl'))
  .map((f) => f.slice(0, -'.jsonl'.length))
  .sort();

function load(name: string): { identity: string; events: LifecycleEvent[]; expected: Expected } {
  const lines = readFileSync(join(GOLDEN_DIR, `${name}.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const events = lines.map((line) => parseEvent(JSON.parse(line)));
  const first = events[0];
  if (first.type !== 'bottle.start_requested')
    throw new Error(`${name}: a recorded history starts with bottle.start_requested`);
  const expected = JSON.parse(readFileSync(join(GOLDEN_DIR, `${name}.expected.json`), 'utf8')) as Expected;
  return { identity: first.data.plan.identity, events, expected };
}

describe('golden histories', () => {
  it('exist, each with its expectation', () => {
    expect(names.length).toBeGreaterThanOrEqual(10);
    const expectations = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.expected.json'));
    expect(expectations.map((f) => f.slice(0, -'.expected.json'.length)).sort()).toEqual(names);
  });

  it.each(names)('%s folds to its recorded outcome', (name) => {
    const { identity, events, expected } = load(name);
    const { state, effects } = foldHistory(identity, events);
    expect(state.value).toEqual(expected.state);
    expect(state.seq).toBe(events.length);
    if (expected.status) expect(bottleStatus(state)).toBe(expected.status);
    for (const [key, value] of Object.entries(expected.context ?? {})) {
      expect(state.context[key as keyof typeof state.context], `context.${key}`).toEqual(value);
    }
    expect(effects.map((e) => e.kind)).toEqual(expected.effects_last);
    if (expected.effects_last_params) expect(effects.map((e) => e.params)).toEqual(expected.effects_last_params);
    for (const effect of effects) expect(effect).toMatchObject({ identity, causedBySeq: events.length });
  });

  it.each(names)('%s folds the same one event at a time through the JSON-cached state', (name) => {
    const { identity, events } = load(name);
    let state: BottleState = initialBottleState(identity);
    for (const event of events) state = JSON.parse(JSON.stringify(foldEvent(state, event).state)) as BottleState;
    expect(statesEqual(state, foldHistory(identity, events).state)).toBe(true);
  });
});
