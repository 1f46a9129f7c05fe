import { formatBudgetAmount } from '../shared/budget.js';
import { grantScopeText } from '../shared/capability.js';
import type { BottleState } from './context.js';
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
  const scope = grantScopeText(pending);
  const target = pending.kind === 'egress' ? `egress ${pending.host ?? ''}${scope ? ` ${scope}` : ''}` : 'dockerfile';
  return { kind: 'request', message: `${target}: ${pending.reason}`, seq: pending.requested_seq };
};

/** The agent's own report (Claude Code's hooks, `bottle-status attention`). */
const agentReport: Source = (state) => {
  const reported = state.context.agentAttention;
  if (!running(state) || !reported) return undefined;
  return { kind: reported.kind, message: reported.message, seq: reported.seq };
};

/** A canary seen leaving (egress.alarm): shown in any state but cleaned, since it reports what already happened. */
const canaryAlarm: Source = (state) => {
  const alarm = state.context.alarm;
  if (!alarm || stateName(state) === 'cleaned') return undefined;
  const times = alarm.count === 1 ? 'once' : `${alarm.count} times`;
  // The alarm keeps no event seq; its count grows with every new alarm, which is what newness needs.
  return { kind: 'alarm', message: `canary ${alarm.rule} sent to ${alarm.host} (${times})`, seq: alarm.count };
};

/** A budget past 80 % (warning) or spent (exhausted), while the agent runs. */
const budgetReached: Source = (state) => {
  const budget = state.context.budget;
  if (!running(state) || !budget || budget.state === 'ok') return undefined;
  const limit = formatBudgetAmount(budget.limit, budget.unit);
  const message =
    budget.state === 'exhausted'
      ? `budget spent (${limit}): raise it with bottle budget --add`
      : `${formatBudgetAmount(budget.spent, budget.unit)} of ${limit} spent`;
  // No event seq either: a raise (new limit) or crossing into exhausted is a new attention, re-reads are not.
  return { kind: 'budget', message, seq: Math.round(budget.limit * 100) * 2 + (budget.state === 'exhausted' ? 1 : 0) };
};

const SOURCES: readonly Source[] = [canaryAlarm, budgetReached, pendingRequest, agentReport];

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
