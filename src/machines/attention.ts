import type { BottleContext, BottleState } from './context.js';
import { stateName } from './status.js';

/**
 * Which bottle needs the operator, and why: one pure reading of the machine's state, shared by
 * `bottle list` (ATTENTION), `bottle wait --until attention`, the dashboard and `bottle notify`.
 * Attention is a fact about a running bottle, never a state of its own: the bottle stays `running`.
 *
 * Each kind has one source below; a new kind is one more source in SOURCES, most urgent first.
 */
export const ATTENTION_KINDS = ['alarm', 'budget', 'request', 'permission', 'question', 'idle'] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

export interface Attention {
  kind: AttentionKind;
  /** Untrusted when the agent wrote it (its message, a request's reason): show through visible-text.ts. */
  message: string;
  /** seq of the event that raised it: a new attention has a new seq, a repeated read the same. */
  seq: number;
}

type Source = (state: BottleState) => Attention | undefined;

const running = (state: BottleState): boolean => stateName(state) === 'running';

/** A capability request waits for `bottle approve` / `bottle deny`; the agent's bottle-request waits with it. */
const pendingRequest: Source = (state) => {
  const pending = state.context.pendingCapability;
  if (!running(state) || !pending) return undefined;
  const target = pending.kind === 'egress' ? `egress ${pending.host ?? ''}` : 'dockerfile';
  return { kind: 'request', message: `${target}: ${pending.reason}`, seq: pending.requested_seq };
};

/** The agent's own report (Claude Code's hooks, `bottle-status attention`). */
const agentReport: Source = (state) => {
  const reported = state.context.agentAttention;
  if (!running(state) || !reported) return undefined;
  return { kind: reported.kind, message: reported.message, seq: reported.seq };
};

/**
 * Extension point for facts other parts of the machine record: a context field holding
 * `{ message: string, seq?: number }` (or null) raises attention of its kind. Read by name, so the
 * source works before and after its field exists: `alarm` (a canary alarm, any state but cleaned)
 * and `budgetAttention` (a budget reached or nearly, while running).
 */
function contextFact(field: string, kind: AttentionKind, whileRunningOnly: boolean): Source {
  return (state) => {
    if (whileRunningOnly ? !running(state) : stateName(state) === 'cleaned') return undefined;
    const fact = (state.context as BottleContext & Record<string, unknown>)[field];
    if (typeof fact !== 'object' || fact === null) return undefined;
    const { message, seq } = fact as { message?: unknown; seq?: unknown };
    if (typeof message !== 'string') return undefined;
    return { kind, message, seq: typeof seq === 'number' ? seq : 0 };
  };
}

const SOURCES: readonly Source[] = [
  contextFact('alarm', 'alarm', false),
  contextFact('budgetAttention', 'budget', true),
  pendingRequest,
  agentReport,
];

/** What the bottle needs from the operator now, the most urgent first; undefined when nothing. */
export function attentionOf(state: BottleState): Attention | undefined {
  for (const source of SOURCES) {
    const attention = source(state);
    if (attention) return attention;
  }
  return undefined;
}

export function needsYou(state: BottleState): boolean {
  return attentionOf(state) !== undefined;
}

/** Whether `next` is an attention `previous` was not (a new kind, or raised again by a later event). */
export function isNewAttention(previous: Attention | undefined, next: Attention | undefined): next is Attention {
  if (!next) return false;
  return !previous || previous.kind !== next.kind || previous.seq !== next.seq;
}
