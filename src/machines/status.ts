import type { BottleState } from './context.js';

const TERMINAL_STATES: ReadonlySet<string> = new Set(['cleaned', 'failed']);

/**
 * cleaned and failed end a run. A failed bottle can still be resumed by hand,
 * but nothing will happen to it on its own; preserved is waiting for a resume
 * and is not terminal.
 */
export function isTerminal(state: BottleState): boolean {
  return TERMINAL_STATES.has(state.value);
}

/** The state name users see in `bottle list`, with what a running bottle is waiting on. */
export function bottleStatus(state: BottleState): string {
  const { value, context } = state;
  if (value !== 'running') return value;
  if (context.pendingCapability) {
    const queued = context.queuedCapabilities?.length ?? 0;
    return queued > 0 ? `running (capability pending, ${queued} more queued)` : 'running (capability pending)';
  }
  if (context.stopRequested) return 'running (stopping)';
  return 'running';
}
