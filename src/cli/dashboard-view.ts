import { createElement as h, useEffect, useState } from 'react';
import { Box, Text, useApp, useInput } from 'ink';
import type { LifecycleEvent } from '../events/schema.js';
import { bottleStatus, stateName, type PendingCapability } from '../machines/index.js';
import { capabilityTarget } from '../shared/capability.js';
import { visibleText } from '../shared/visible-text.js';
import { describeEvent } from './render-event.js';
import { currentState } from '../worker/bottle-log.js';
import type { Session } from './session.js';

/**
 * What `bottle dashboard` draws, with ink. Everything shown
 * comes from the event log (index, live states, recent events) — the same
 * source `events`, `list` and `replay` read.
 */
interface Row {
  identity: string;
  agent: string;
  state: string;
  pending: string | null;
  /** Requests waiting behind the pending one, oldest first. */
  queued: string[];
}
interface View {
  rows: Row[];
  egress: string[];
  events: string[];
  at: string;
}

const POLL_MS = 1000;

async function snapshot(session: Session): Promise<View> {
  const rows: Row[] = [];
  const egress: Array<{ at: string; line: string }> = [];
  const events: Array<{ at: string; line: string }> = [];
  for (const entry of await session.log.listBottles()) {
    const { state: live, lastSeq } = await currentState(session.log, entry.identity);
    // Failed bottles stay listed, as preserved ones do: both wait for a resume.
    if (lastSeq === 0 || stateName(live) === 'cleaned') continue;
    // Host and reason are the agent's words: shown with their control characters spelled out.
    const describe = (r: PendingCapability) => visibleText(`${r.request_id} ${capabilityTarget(r)}: ${r.reason}`);
    const pending = live.context.pendingCapability;
    rows.push({
      identity: entry.identity,
      agent: entry.agent,
      state: bottleStatus(live),
      pending: pending ? describe(pending) : null,
      queued: live.context.queuedCapabilities.map(describe),
    });
    const last = await session.log.lastSeq(entry.identity);
    const recent: LifecycleEvent[] = await session.log.read(entry.identity, Math.max(1, last - 30));
    for (const ev of recent) {
      const line = `${ev.at.slice(11, 19)} ${entry.identity} ${describeEvent(ev, entry.identity)}`;
      (ev.type.startsWith('egress.') ? egress : events).push({ at: ev.at, line });
    }
  }
  const newest = (xs: Array<{ at: string; line: string }>, n: number) => xs.sort((a, b) => a.at.localeCompare(b.at)).slice(-n).map((x) => x.line);
  return { rows, egress: newest(egress, 8), events: newest(events, 10), at: new Date().toISOString().slice(11, 19) };
}

export function Dashboard({ session }: { session: Session }) {
  const { exit } = useApp();
  const [view, setView] = useState<View | null>(null);
  const [error, setError] = useState<string | null>(null);
  useInput((input) => {
    if (input === 'q') exit();
  });
  useEffect(() => {
    let alive = true;
    const tick = async () => {
      try {
        const v = await snapshot(session);
        if (alive) setView(v);
      } catch (err) {
        if (alive) setError(err instanceof Error ? err.message : String(err));
      }
    };
    void tick();
    const timer = setInterval(tick, POLL_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [session]);
  if (error) return h(Text, { color: 'red' }, `dashboard: ${visibleText(error)}`);
  if (!view) return h(Text, null, 'loading…');
  const section = (title: string, lines: string[], empty: string) =>
    h(Box, { flexDirection: 'column', marginTop: 1 },
      h(Text, { bold: true }, title),
      ...(lines.length
        ? lines.map((l, i) => h(Text, { key: String(i), wrap: 'truncate-end' }, visibleText(l)))
        : [h(Text, { key: 'e', dimColor: true }, empty)]));
  return h(Box, { flexDirection: 'column' },
    h(Text, { bold: true }, `claude-bottle dashboard  ${view.at}  (q to quit)`),
    section('BOTTLES', view.rows.map((r) => `${r.identity.padEnd(20)} ${r.agent.padEnd(14)} ${r.state}`), 'no live bottles'),
    section(
      'PENDING REQUESTS',
      view.rows
        .filter((r) => r.pending)
        .flatMap((r) => [
          `${r.identity}: ${r.pending}  -> bottle approve ${r.identity} | bottle deny ${r.identity} --reason ...`,
          ...r.queued.map((q) => `${r.identity}: (queued) ${q}`),
        ]),
      'none',
    ),
    section('EGRESS', view.egress, 'no egress decisions yet'),
    section('EVENTS', view.events, 'no events'));
}

