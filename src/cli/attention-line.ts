import { ATTENTION_KINDS, type Attention } from '../machines/index.js';
import { visibleText } from '../shared/visible-text.js';

/** What is shown of an attention: its kind and the agent's (or the request's) words. */
export type ShownAttention = Pick<Attention, 'kind' | 'message'>;

/** How much of an attention's message a table cell shows. */
const CELL_MESSAGE_CHARS = 40;

/** `permission: Claude needs your permiss…`, made visible (the message is the agent's words); '-' for none. */
export function attentionCell(attention: ShownAttention | null | undefined, max = CELL_MESSAGE_CHARS): string {
  if (!attention) return '-';
  const chars = Array.from(visibleText(attention.message.replace(/\s+/g, ' ').trim()));
  const message = chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
  return message ? `${attention.kind}: ${message}` : attention.kind;
}

/** The attention in one line for scripts and notifications, whole (bounded where it was recorded). */
export function attentionLine(attention: ShownAttention): string {
  return `${attention.kind}: ${visibleText(attention.message)}`;
}

/**
 * Bottles that need the operator first, the most urgent kind first; the rest after them. Stable:
 * bottles of the same urgency keep their order.
 */
export function needsYouFirst<T>(rows: readonly T[], attentionOf: (row: T) => ShownAttention | null | undefined): T[] {
  const rank = (row: T) => {
    const attention = attentionOf(row);
    return attention ? ATTENTION_KINDS.indexOf(attention.kind) : ATTENTION_KINDS.length;
  };
  return rows
    .map((row, index) => ({ row, index, rank: rank(row) }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map(({ row }) => row);
}
