import type { EventLog } from '../../event-store/log.js';
import { EgressFold, type EgressView } from './fold.js';

/**
 * Egress views kept up to date as a bottle's log grows (the dashboard): each
 * read folds only the events appended since the last one, so a long egress
 * history is read once, not on every redraw.
 */
export class LiveEgressViews {
  private readonly folds = new Map<string, { fold: EgressFold; seq: number }>();

  async read(log: EventLog, identity: string): Promise<EgressView> {
    let known = this.folds.get(identity);
    if (!known) {
      known = { fold: new EgressFold(), seq: 0 };
      this.folds.set(identity, known);
    }
    for (const ev of await log.read(identity, known.seq + 1)) {
      if (ev.seq <= known.seq) continue;
      known.fold.add(ev);
      known.seq = ev.seq;
    }
    return known.fold.view();
  }
}
