import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LifecycleEvent } from '../events/schema.js';
import { repoRoot } from '../images/build-context.js';
import type { BottleState, PendingCapability } from '../machines/index.js';
import { capabilityTarget } from '../shared/capability.js';
import { RuntimeFailure } from '../shared/errors.js';
import { visibleBoundedLines, visibleText } from '../shared/visible-text.js';
import { lineDiff } from './line-diff.js';
import type { Session } from './session.js';

type RequestedEvent = Extract<LifecycleEvent, { type: 'capability.requested' }>;

/**
 * What `bottle approve` shows before it approves: the whole request as the
 * agent filed it, every agent-written string made visible, and for a
 * Dockerfile request the Dockerfile as a diff against the one the bottle runs
 * now. Dockerfile bodies are read from the event log (the live state does not
 * keep them).
 */
export async function capabilityReview(
  session: Session,
  identity: string,
  live: BottleState,
  pending: PendingCapability,
): Promise<string[]> {
  const lines = [
    `request ${visibleText(pending.request_id)} from ${identity}: ${visibleText(capabilityTarget(pending))}`,
    ...labelled('reason', pending.reason),
  ];
  if (pending.kind !== 'dockerfile') return lines;
  const events = await session.log.read(identity);
  const requested = events.find(
    (ev): ev is RequestedEvent => ev.type === 'capability.requested' && ev.data.request_id === pending.request_id,
  );
  const body = requested?.data.dockerfile;
  if (body === undefined) {
    throw new RuntimeFailure(
      `the Dockerfile of request ${visibleText(pending.request_id)} is not in ${identity}'s event log; ` +
        'nothing to show, so nothing is approved',
    );
  }
  const current = currentDockerfile(events, live);
  if (current.text === null) {
    return [
      ...lines,
      `requested Dockerfile (the current one, ${current.source}, is not readable here):`,
      ...linesOf(body).map((l) => `+ ${visibleText(l)}`),
    ];
  }
  const diff = lineDiff(linesOf(current.text), linesOf(body));
  const changed = diff.some((d) => d.op !== ' ');
  return [
    ...lines,
    `requested Dockerfile, as a diff against the current one (${current.source})${changed ? '' : ': no change'}:`,
    ...diff.map((d) => `${d.op} ${visibleText(d.text)}`),
  ];
}

/** Lines without the empty one a final newline leaves; a lone CR stays inside its line (and is shown as `\r`). */
function linesOf(text: string): string[] {
  const lines = text.split(/\r?\n/);
  return lines.length > 1 && lines[lines.length - 1] === '' ? lines.slice(0, -1) : lines;
}

function labelled(label: string, text: string): string[] {
  const [first, ...rest] = visibleBoundedLines(text);
  return [`${label}: ${first}`, ...rest.map((l) => `${' '.repeat(label.length + 2)}${l}`)];
}

/** The Dockerfile the bottle runs: the last approved Dockerfile request in its log, else the plan's. */
export function currentDockerfile(
  events: readonly LifecycleEvent[],
  live: BottleState,
): { source: string; text: string | null } {
  const requests = new Map<string, RequestedEvent>();
  let approved: RequestedEvent | undefined;
  for (const ev of events) {
    if (ev.type === 'capability.requested') requests.set(ev.data.request_id, ev);
    if (ev.type === 'capability.approved') {
      const request = requests.get(ev.data.request_id);
      if (request?.data.kind === 'dockerfile' && request.data.dockerfile !== undefined) approved = request;
    }
  }
  if (approved) {
    return { source: `approved in request ${visibleText(approved.data.request_id)}`, text: approved.data.dockerfile! };
  }
  const image = live.context.plan?.image;
  if (!image) return { source: 'unknown', text: null };
  const path = image.builtin ? join(repoRoot(), 'images', 'agent', 'Dockerfile') : image.dockerfile;
  try {
    return { source: image.builtin ? 'the built-in agent image' : path, text: readFileSync(path, 'utf8') };
  } catch {
    return { source: path, text: null };
  }
}
