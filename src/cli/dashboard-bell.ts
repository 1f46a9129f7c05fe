import { isNewAttention } from '../machines/index.js';
import type { DashboardView } from './dashboard-data.js';

/** How many bottles need the operator for a reason the previous view did not show (one bell each). */
export function newAttentions(previous: DashboardView | null, next: DashboardView): number {
  if (!previous) return 0;
  const before = new Map(previous.rows.map((row) => [row.identity, row.attention]));
  return next.rows.filter((row) => isNewAttention(before.get(row.identity), row.attention)).length;
}

/**
 * When `bottle dashboard` rings the terminal's bell: once for each new attention (newAttentions);
 * a redraw of the same attention, an attention cleared or a bottle at work ring nothing, and
 * neither does the first view (what already waited when the dashboard opened is not new).
 *
 * One bell serves the dashboard's whole run, across the views it leaves for an attached bottle:
 * an attention raised while the operator was attached elsewhere rings on the way back.
 */
export class AttentionBell {
  private shown: DashboardView | null = null;

  /** How many times `next` rings the bell; it is the view shown from now on. */
  ring(next: DashboardView): number {
    const count = newAttentions(this.shown, next);
    this.shown = next;
    return count;
  }
}
