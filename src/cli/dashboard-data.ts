import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { BOTTLES_INDEX_KEY, bottleKeys } from '../event-store/keys.js';
import type { LifecycleEvent } from '../events/schema.js';
import {
  accepts,
  attentionOf,
  bottleStatus,
  stateName,
  type Attention,
  type PendingCapability,
} from '../machines/index.js';
import { capabilityTarget } from '../shared/capability.js';
import { visibleText } from '../shared/visible-text.js';
import { currentState } from '../engine/bottle-log.js';
import { attentionCell, needsYouFirst } from './attention-line.js';
import { describeEvent } from './render-event.js';
import type { Session } from './session.js';

/**
 * What the dashboard shows, read from the event log and nothing else (the
 * index, live states, recent events), and the wait for the next change:
 * a blocking read on the shown bottles' event streams.
 */

export interface DashboardRow {
  identity: string;
  agent: string;
  status: string;
  /** The pending request, as the machine holds it (agent-written fields not yet made visible). */
  pending: PendingCapability | null;
  /** The pending request in one visible line. */
  pendingLine: string | null;
  queued: number;
  /** What the bottle needs from the operator (attention.ts); needs-you bottles are listed first. */
  attention: Attention | undefined;
  /** The attention in a few visible words ('-' for none). */
  attentionLine: string;
  /** For a preserved or failed bottle: the command that relaunches it. */
  resume: string | null;
  lastSeq: number;
}

export interface DashboardView {
  rows: DashboardRow[];
  egress: string[];
  events: string[];
  /** How many bottles the index held: a new one is a change to show. */
  indexed: number;
  at: string;
}

const RECENT_EVENTS = 30;

/** A pending or queued request in one line: the host and reason are the agent's words, made visible. */
function requestLine(request: PendingCapability): string {
  return visibleText(`${request.request_id} ${capabilityTarget(request)}: ${request.reason}`);
}

export async function readDashboard(
  session: Session,
  keep: { egress: number; events: number },
): Promise<DashboardView> {
  const rows: DashboardRow[] = [];
  const egress: Array<{ at: string; line: string }> = [];
  const events: Array<{ at: string; line: string }> = [];
  const bottles = await session.log.listBottles();
  for (const entry of bottles) {
    const { state: live, lastSeq } = await currentState(session.log, entry.identity);
    const name = stateName(live);
    // Failed bottles stay listed, as preserved ones do: both wait for a resume.
    if (lastSeq === 0 || name === 'cleaned' || name === 'discarded') continue;
    // A preserved bottle still holds the request it approved: only one the machine would decide is pending.
    const held = live.context.pendingCapability;
    const decidable =
      held && accepts(live, { type: 'capability.approved', data: { request_id: held.request_id, by: '' } });
    const pending = decidable ? held : null;
    rows.push({
      identity: entry.identity,
      agent: visibleText(entry.agent),
      status: bottleStatus(live),
      attention: attentionOf(live),
      attentionLine: attentionCell(attentionOf(live)),
      pending,
      pendingLine: pending ? requestLine(pending) : null,
      queued: pending ? live.context.queuedCapabilities.length : 0,
      resume: name === 'preserved' || name === 'failed' ? `bottle resume ${entry.identity}` : null,
      lastSeq,
    });
    const recent: LifecycleEvent[] = await session.log.read(entry.identity, Math.max(1, lastSeq - RECENT_EVENTS));
    for (const ev of recent) {
      const line = `${ev.at.slice(11, 19)} ${entry.identity} ${describeEvent(ev, entry.identity)}`;
      (ev.type.startsWith('egress.') ? egress : events).push({ at: ev.at, line });
    }
  }
  const newest = (xs: Array<{ at: string; line: string }>, n: number) =>
    n <= 0
      ? []
      : xs
          .sort((a, b) => a.at.localeCompare(b.at))
          .slice(-n)
          .map((x) => x.line);
  return {
    rows: needsYouFirst(rows, (row) => row.attention),
    egress: newest(egress, keep.egress),
    events: newest(events, keep.events),
    indexed: bottles.length,
    at: new Date().toISOString().slice(11, 19),
  };
}

/**
 * Waits for the next change to what the dashboard shows: an event appended
 * to a shown bottle's stream after what the view read, or a bottle added to
 * the index. Blocks on the streams (XREAD on a connection of its own, kept for
 * the dashboard's lifetime), so an idle dashboard costs one blocked read at a
 * time and never a read of Docker.
 */
export function watchChanges(
  redis: Redis,
  signal: AbortSignal,
  blockMs = 2000,
): (view: DashboardView) => Promise<void> {
  const conn = redis.duplicate();
  // A lost connection shows as a failed read (drawn by the dashboard), never as a line over the screen.
  conn.on('error', () => undefined);
  signal.addEventListener('abort', () => conn.disconnect(), { once: true });
  return async (view) => {
    const keys = view.rows.map((r) => bottleKeys(r.identity).events);
    const ids = view.rows.map((r) => `${r.lastSeq}-0`);
    try {
      while (!signal.aborted) {
        if (keys.length > 0) {
          const reply = await conn.xread('COUNT', 1, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids);
          if (reply) return;
        } else {
          await sleep(blockMs, undefined, { signal });
        }
        if ((await conn.zcard(BOTTLES_INDEX_KEY)) !== view.indexed) return;
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  };
}
