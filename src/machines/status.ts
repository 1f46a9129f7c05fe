import type { EventData, EventType } from '../events/schema.js';
import type { BottleState } from './context.js';
import { toSnapshot } from './fold.js';

const TERMINAL_STATES: ReadonlySet<string> = new Set(['cleaned', 'failed', 'discarded']);

/** The top-level state name: `launching` for the parallel launch, whatever its regions are doing. */
export function stateName(state: Pick<BottleState, 'value'>): string {
  return typeof state.value === 'string' ? state.value : Object.keys(state.value)[0];
}

/**
 * cleaned, failed and discarded end a run. A failed bottle can still be resumed by hand,
 * but nothing will happen to it on its own; preserved is waiting for a resume
 * and is not terminal.
 */
export function isTerminal(state: BottleState): boolean {
  return TERMINAL_STATES.has(stateName(state));
}

/** The state name users see in `bottle list`, with what a launching or running bottle is waiting on. */
export function bottleStatus(state: BottleState): string {
  const { value, context } = state;
  if (typeof value !== 'string') {
    const [name, regions] = Object.entries(value)[0];
    if (typeof regions === 'string') return `${name} (${regions})`;
    const parts = Object.entries(regions)
      .filter(([, region]) => region !== 'unused')
      .map(([region, step]) => `${region} ${typeof step === 'string' ? step : JSON.stringify(step)}`);
    return `${name} (${parts.join(', ')})`;
  }
  // Never `running` once its enforcement is gone, though the agent may still be stopping.
  if (value === 'stopping' && context.sidecarExit) return `stopping (${context.sidecarExit.role} exited)`;
  if (value !== 'running') return value;
  if (context.pendingCapability) {
    const queued = context.queuedCapabilities.length;
    return queued > 0 ? `running (capability pending, ${queued} more queued)` : 'running (capability pending)';
  }
  if (context.stopRequested) return 'running (stopping)';
  return 'running';
}

/** A command as the CLI would enqueue it: an event without its place in the log. */
export type Command<T extends EventType = EventType> = { [K in T]: { type: K; data: EventData<K> } }[T];

/**
 * Whether the machine, in this state, does anything with the command: the
 * CLI asks this instead of knowing which states take which commands.
 */
export function accepts(state: BottleState, command: Command): boolean {
  const event = { ...command, seq: state.seq + 1, at: '1970-01-01T00:00:00.000Z', v: 1 };
  return toSnapshot(state).can(event);
}
