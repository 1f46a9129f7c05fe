import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldEvent, initialBottleState } from '../../src/machines/index.js';
import { stampEvents } from '../../src/event-store/log.js';
import type { NewEvent } from '../../src/events/schema.js';
import { mintIdentity } from '../../src/shared/identity.js';
import { startHarness, type BottleHarness } from '../support/cli-harness.js';
import { fakePlan } from '../support/fake-plan.js';

/** Output of read-only commands over pipes: complete, however long, and in order. */
let h: BottleHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.cleanup();
});

describe('bottle events over a pipe', () => {
  it('prints every event of a long log as JSON lines (nothing lost when the process exits)', async () => {
    const identity = mintIdentity('long');
    const batch: NewEvent[] = [{ type: 'bottle.start_requested', data: { plan: fakePlan(identity) } }];
    for (let n = 1; n < 6000; n++) {
      batch.push({
        type: n % 3 ? 'egress.allowed' : 'egress.denied',
        data: {
          n,
          host: `h${n}.test`,
          port: 443,
          method: 'CONNECT',
          reason: n % 3 ? 'allowlisted' : 'not_in_allowlist',
        },
      });
    }
    const events = stampEvents(0, batch, new Date(0).toISOString());
    let state = initialBottleState(identity);
    for (const ev of events) state = foldEvent(state, ev).state;
    await h.log.append(identity, 0, events, state);

    const r = await h.cli(['events', identity, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(6000);
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(events.map((e) => e.seq));

    const replay = await h.cli(['replay', identity, '--format', 'json']);
    expect(JSON.parse(replay.stdout)).toMatchObject({ identity, events: 6000, matches: true });
  });
});

describe('bottle --version and usage errors', () => {
  it('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const r = await h.cli(['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('an unknown command is a usage error: exit 2, no stack trace', async () => {
    const r = await h.cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
