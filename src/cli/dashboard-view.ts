import { createElement as h, useCallback, useEffect, useRef, useState, type ReactElement } from 'react';
import { setTimeout as sleep } from 'node:timers/promises';
import { Box, Text, useApp, useInput, useStdout, type Key } from 'ink';
import { capabilityTarget, egressAllowEntry, grantScopeText, MAX_REASON_CHARS } from '../shared/capability.js';
import { visibleText } from '../shared/visible-text.js';
import { currentState } from '../engine/bottle-log.js';
import { capabilityReview } from './capability-review.js';
import { checkDecision, enqueueDecision } from './capability-decision.js';
import { readDashboard, watchChanges, type DashboardRow, type DashboardView } from './dashboard-data.js';
import type { AttentionBell } from './dashboard-bell.js';
import { describeEvent } from './render-event.js';
import type { Session } from './session.js';
import type { EgressView } from './egress-view/fold.js';
import { LiveEgressViews } from './egress-view/live.js';
import { egressHostLines } from './egress-view/render.js';

/**
 * What `bottle dashboard` draws, with ink. Everything shown comes from the
 * event log (index, live states, recent events), the source `events`, `list`
 * and `replay` read; it redraws when a shown bottle's stream grows.
 *
 * The operator decides a pending capability request here: Enter opens the
 * full request (a Dockerfile request as a diff against the bottle's current
 * Dockerfile, as `bottle approve` prints it), `a` approves exactly that
 * request, `d` asks for the reason the agent is told. Decisions take the
 * path `bottle approve --request ID` / `bottle deny` take.
 *
 * Bottles that need the operator come first, and each new attention rings the terminal's bell once
 * (`bell`, kept by the caller across attaches); `t` hands the terminal to the selected bottle's agent
 * (`onAttach`), back here on detach.
 *
 * Every frame fits the terminal (each line is cut or wrapped to its width),
 * so an 80x24 pane redraws in place.
 */

interface Review {
  identity: string;
  requestId: string;
  lines: string[];
  top: number;
}

/** The last decision made here, kept on screen until the next one. */
interface Notice {
  identity: string;
  text: string;
  /** The command to copy (the resume command once an approval preserved the bottle). */
  command?: string;
  error?: boolean;
}

type Mode = { kind: 'list' } | { kind: 'review'; review: Review } | { kind: 'reason'; review: Review; reason: string };

const HELP_LIST = '↑↓ select  enter review request  t attach  q quit';
const BELL = '\x07';
const REASON_PROMPT = 'deny reason (told to the agent): ';
const HELP_REVIEW = 'a approve  d deny  ↑↓ PgUp PgDn Home End scroll  esc back  q quit';

function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

interface ShownLine {
  text: string;
  color?: string;
}

const DIFF_COLOURS: Readonly<Record<string, string>> = { '+': 'green', '-': 'red' };

/**
 * A long line cut into pieces of the terminal's width, so a request is shown
 * whole rather than cut off. A continued diff line keeps its colour and says
 * it continues (`+↳`), so it is not read as a line of its own.
 */
function wrapLines(lines: string[], width: number): ShownLine[] {
  const out: ShownLine[] = [];
  for (const text of lines) {
    const isDiff = /^[-+ ] /.test(text);
    const color = isDiff ? DIFF_COLOURS[text[0]] : undefined;
    const chars = Array.from(text);
    out.push({ text: chars.slice(0, width).join(''), color });
    const mark = isDiff ? `${text[0]}↳` : '↳ ';
    for (let i = width; i < chars.length; i += width - 2) {
      out.push({ text: mark + chars.slice(i, i + width - 2).join(''), color });
    }
  }
  return out;
}

/** The end of what is being typed, when all of it does not fit. */
function typingTail(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : `…${chars.slice(chars.length - width + 1).join('')}`;
}

const newest = (lines: string[], count: number) => (count > 0 ? lines.slice(-count) : []);

const line = (text: string, key: string, props: Record<string, unknown> = {}) =>
  h(Text, { key, wrap: 'truncate-end', ...props }, text.length ? text : ' ');

export function Dashboard({
  session,
  bell,
  onAttach,
}: {
  session: Session;
  bell: AttentionBell;
  onAttach: (identity: string) => void;
}) {
  const { exit } = useApp();
  const { columns, rows: height } = useTerminalSize();
  const [view, setView] = useState<DashboardView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [mode, setMode] = useState<Mode>({ kind: 'list' });
  const [notice, setNotice] = useState<Notice | null>(null);
  // Bottles with a decision on its way: one decision at a time per bottle.
  const [deciding, setDeciding] = useState<ReadonlySet<string>>(new Set());
  const alive = useRef(new AbortController());
  useEffect(() => () => alive.current.abort(), []);
  const egressViews = useRef(new LiveEgressViews());
  const [traffic, setTraffic] = useState<{ identity: string; view: EgressView } | null>(null);

  useEffect(() => {
    const signal = alive.current.signal;
    const nextChange = watchChanges(session.redis, signal);
    void (async () => {
      while (!signal.aborted) {
        try {
          const next = await readDashboard(session, { egress: 8, events: 10 });
          if (signal.aborted) return;
          process.stdout.write(BELL.repeat(bell.ring(next)));
          setView(next);
          setError(null);
          await nextChange(next);
        } catch (err) {
          if (signal.aborted) return;
          setError(err instanceof Error ? err.message : String(err));
          await sleep(2000, undefined, { signal }).catch(() => undefined);
        }
      }
    })();
  }, [session, bell]);

  const rows = view?.rows ?? [];
  const current: DashboardRow | undefined =
    rows.find((r) => r.identity === selected) ?? rows.find((r) => r.pending) ?? rows[0];

  // The selected bottle's per-host traffic, folded on from where the last read stopped.
  useEffect(() => {
    if (!current) return;
    const { identity } = current;
    egressViews.current.read(session.log, identity).then(
      (next) => !alive.current.signal.aborted && setTraffic({ identity, view: next }),
      () => undefined,
    );
  }, [session, current?.identity, current?.lastSeq]);

  const say = useCallback((next: Notice) => {
    if (!alive.current.signal.aborted) setNotice(next);
  }, []);

  const openReview = async (row: DashboardRow) => {
    if (!row.pending) {
      say({ identity: row.identity, text: `${row.identity} has no pending capability request` });
      return;
    }
    try {
      const { state: live } = await currentState(session.log, row.identity);
      const pending = live.context.pendingCapability;
      if (!pending) throw new Error(`${row.identity} no longer has a pending capability request`);
      const lines = await capabilityReview(session, row.identity, live, pending);
      if (!alive.current.signal.aborted) {
        setMode({ kind: 'review', review: { identity: row.identity, requestId: pending.request_id, lines, top: 0 } });
      }
    } catch (err) {
      say({ identity: row.identity, text: visibleText(err instanceof Error ? err.message : String(err)), error: true });
    }
  };

  /** The decision covers exactly the reviewed request: its id goes with it, as `approve --request ID` does. */
  const decide = async (review: Review, approve: boolean, reason?: string) => {
    const { identity, requestId } = review;
    const shownId = visibleText(requestId);
    setMode({ kind: 'list' });
    setDeciding((now) => new Set(now).add(identity));
    try {
      const { command, pending } = await checkDecision(session, identity, { approve, reason, requestId });
      say({ identity, text: `${approve ? 'approving' : 'denying'} ${shownId}…` });
      const progress = (ev: Parameters<typeof describeEvent>[0]) =>
        say({ identity, text: `${approve ? 'approved' : 'denied'} ${shownId}: ${describeEvent(ev, identity)}` });
      const end = await enqueueDecision(session, identity, command, progress, undefined, alive.current.signal);
      if (end?.type === 'bottle.preserved') {
        say({
          identity,
          text: `approved ${shownId}; ${identity} was rebuilt into saved state. Relaunch with:`,
          command: `bottle resume ${identity}`,
        });
      } else if (end?.type === 'bottle.failed') {
        say({
          identity,
          text: `approved ${shownId}, but ${describeEvent(end, identity)}`,
          command: `bottle resume ${identity}`,
          error: true,
        });
      } else if (end?.type === 'capability.answered') {
        // An approved egress request applies to the running bottle: nothing to resume.
        const scope = grantScopeText(pending);
        const entry = egressAllowEntry(pending) ?? capabilityTarget(pending);
        const host = visibleText(scope ? `${entry} ${scope}` : entry);
        const text = end.data.delivered
          ? `approved ${shownId}: ${host} is allowed now in the running ${identity} (no resume needed)`
          : `approved ${shownId}: ${identity} had already stopped; ${host} is kept for its next resume`;
        say({ identity, text });
      } else if (end?.type === 'effect.failed') {
        const text = `approved ${shownId} (kept for later resumes), but the running gateway was not told`;
        say({ identity, text: `${text}: ${visibleText(end.data.error)}`, error: true });
      } else if (end?.type === 'capability.denied') {
        say({
          identity,
          text: `denied ${shownId}: ${visibleText(command.type === 'capability.denied' ? command.data.reason : '')}`,
        });
      }
    } catch (err) {
      say({ identity, text: visibleText(err instanceof Error ? err.message : String(err)), error: true });
    } finally {
      if (!alive.current.signal.aborted) {
        setDeciding((now) => new Set([...now].filter((other) => other !== identity)));
      }
    }
  };

  const reviewHeight = Math.max(3, height - 4);

  useInput((input: string, key: Key) => {
    if (mode.kind === 'reason') {
      if (key.escape) setMode({ kind: 'review', review: mode.review });
      else if (key.return) {
        if (mode.reason.trim()) void decide(mode.review, false, mode.reason);
      } else if (key.backspace || key.delete)
        setMode({ ...mode, reason: Array.from(mode.reason).slice(0, -1).join('') });
      else if (!key.ctrl && !key.meta && input) {
        // Typed or pasted text; a pasted line break or other control character is not part of a one-line reason.
        const typed = input.replace(/[\u0000-\u001f\u007f-\u009f]/gu, '');
        setMode({
          ...mode,
          reason: Array.from(mode.reason + typed)
            .slice(0, MAX_REASON_CHARS)
            .join(''),
        });
      }
      return;
    }
    if (input === 'q') {
      exit();
      return;
    }
    if (mode.kind === 'review') {
      const { review } = mode;
      const total = wrapLines(review.lines, Math.max(20, columns - 1)).length;
      const scroll = (by: number) =>
        setMode({
          kind: 'review',
          review: { ...review, top: Math.max(0, Math.min(total - reviewHeight, review.top + by)) },
        });
      if (key.escape) setMode({ kind: 'list' });
      else if (input === 'a' && !deciding.has(review.identity)) void decide(review, true);
      else if (input === 'd' && !deciding.has(review.identity)) setMode({ kind: 'reason', review, reason: '' });
      else if (key.upArrow || input === 'k') scroll(-1);
      else if (key.downArrow || input === 'j') scroll(1);
      else if (key.pageUp) scroll(-reviewHeight);
      else if (key.pageDown || input === ' ') scroll(reviewHeight);
      else if (key.home || input === 'g') scroll(-total);
      else if (key.end || input === 'G') scroll(total);
      return;
    }
    if (!current) return;
    const at = rows.indexOf(current);
    if (input === 't') {
      onAttach(current.identity);
      exit();
    } else if (key.upArrow || input === 'k') setSelected(rows[Math.max(0, at - 1)].identity);
    else if (key.downArrow || input === 'j') setSelected(rows[Math.min(rows.length - 1, at + 1)].identity);
    else if ((key.return || input === 'a' || input === 'd') && !deciding.has(current.identity)) {
      setSelected(current.identity);
      void openReview(current);
    }
  });

  if (mode.kind !== 'list') return reviewScreen(mode, columns, reviewHeight);
  if (error && !view) return h(Text, { color: 'red' }, `dashboard: ${visibleText(error)}`);
  if (!view) return h(Text, null, 'loading…');
  const shownTraffic = traffic && traffic.identity === current?.identity ? traffic.view : undefined;
  return listScreen({ view, current, traffic: shownTraffic, notice, error, height, columns });
}

function reviewScreen(mode: Exclude<Mode, { kind: 'list' }>, columns: number, reviewHeight: number): ReactElement {
  const { review } = mode;
  const wrapped = wrapLines(review.lines, Math.max(20, columns - 1));
  const shown = wrapped.slice(review.top, review.top + reviewHeight);
  const last = Math.min(wrapped.length, review.top + reviewHeight);
  const position = `lines ${review.top + 1}-${last} of ${wrapped.length}`;
  const footer =
    mode.kind === 'reason'
      ? [
          line(`${REASON_PROMPT}${typingTail(mode.reason, columns - REASON_PROMPT.length - 2)}█`, 'f1', {
            color: 'yellow',
          }),
          line('enter send  esc back', 'f2', { dimColor: true }),
        ]
      : [
          line(wrapped.length > reviewHeight ? `${position}  more: ↑↓ PgUp PgDn Home End` : position, 'f1', {
            dimColor: true,
          }),
          line(HELP_REVIEW, 'f2', { bold: true }),
        ];
  return h(
    Box,
    { flexDirection: 'column' },
    line(`REVIEW ${review.identity} request ${visibleText(review.requestId)}`, 'title', { bold: true }),
    ...shown.map((l, i) => line(l.text, `l${i}`, l.color ? { color: l.color } : {})),
    ...footer,
  );
}

function listScreen(props: {
  view: DashboardView;
  current: DashboardRow | undefined;
  /** The selected bottle's per-host traffic (egress-view/fold.ts). */
  traffic: EgressView | undefined;
  notice: Notice | null;
  error: string | null;
  height: number;
  columns: number;
}): ReactElement {
  const { view, current, traffic, notice, error, height, columns } = props;
  const out: ReactElement[] = [];
  const push = (text: string, extra: Record<string, unknown> = {}) => out.push(line(text, `r${out.length}`, extra));
  push(`claude-bottle dashboard  ${view.at}  ${HELP_LIST}`, { bold: true });
  if (error) push(`dashboard: ${visibleText(error)}`, { color: 'red' });
  if (notice) {
    for (const piece of wrapLines([notice.text], Math.max(20, columns - 1))) {
      push(piece.text, { color: notice.error ? 'red' : 'cyan' });
    }
    // On a line of its own, nothing else on it: ready to copy.
    if (notice.command) push(`  ${notice.command}`, { bold: true });
  }
  push('BOTTLES', { bold: true });
  if (view.rows.length === 0) push('no live, preserved or failed bottles', { dimColor: true });
  // The bottle rows get what the screen has left after the selected bottle's request, egress and events.
  const bottleBudget = Math.max(2, height - out.length - 12);
  const bottleLines = view.rows.flatMap((r) => {
    const mark = r === current ? '>' : ' ';
    const needs = r.attention ? `  ! ${r.attentionLine}` : '';
    const head = { text: `${mark} ${r.identity.padEnd(12)} ${r.agent.padEnd(12)} ${r.status}${needs}`, row: r };
    return r.resume ? [head, { text: `      resume: ${r.resume}`, row: r }] : [head];
  });
  const selectedAt = bottleLines.findIndex((l) => l.row === current);
  const first = Math.max(0, Math.min(selectedAt - Math.floor(bottleBudget / 2), bottleLines.length - bottleBudget));
  for (const l of bottleLines.slice(first, first + bottleBudget)) push(l.text, l.row === current ? { bold: true } : {});

  if (current?.pendingLine) {
    push(`PENDING (${current.identity})${current.queued ? `, ${current.queued} more queued` : ''}: enter to review`, {
      bold: true,
    });
    push(current.pendingLine, { color: 'yellow' });
  }
  const others = view.rows.filter((r) => r.pending && r !== current).map((r) => r.identity);
  if (others.length) push(`also pending: ${others.join(' ')}`, { color: 'yellow' });

  const room = height - 1 - out.length;
  const hostRoom = Math.max(0, Math.floor((room - 3) / 3));
  const hostLines = traffic?.hosts.length ? egressHostLines(traffic, Math.max(1, hostRoom - 2)).slice(0, hostRoom) : [];
  const egressRoom = Math.min(view.egress.length || 1, Math.max(0, Math.floor((room - 2 - hostLines.length) / 2)));
  const eventRoom = Math.max(0, room - 2 - hostLines.length - egressRoom - 1);
  if (room >= 4) {
    push(`EGRESS${hostLines.length && current ? ` of ${current.identity} (bottle egress ${current.identity})` : ''}`, {
      bold: true,
    });
    for (const l of hostLines) push(l);
    if (view.egress.length === 0) push('no egress decisions yet', { dimColor: true });
    for (const l of newest(view.egress, egressRoom)) push(l);
    push('EVENTS', { bold: true });
    for (const l of newest(view.events, eventRoom)) push(l);
  }
  return h(Box, { flexDirection: 'column' }, ...out.slice(0, Math.max(1, height - 1)));
}
