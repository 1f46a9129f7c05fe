import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClaudeFixture, type ClaudeFixture } from '../support/claude-fixture.js';
import { startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * The skill every bottle is given reaches Claude Code itself: the real CLI, run in a bottle against the
 * local fake Messages API, lists the bottle-request skill with its description in what it sends the model,
 * so the agent knows how to ask before any request of its has been refused.
 */

let h: BottleHarness;
let f: ClaudeFixture | undefined;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await f?.close();
  await h?.cleanup();
});

describe('the bottle-request skill', () => {
  it('is offered to the model by Claude Code in a fresh bottle', async () => {
    f = await startClaudeFixture(h, { reply: 'ok' });
    const run = await h.cli(['--manifest', f.manifestPath, 'start', f.agent, '--', '-p', 'say hi'], { env: f.env });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const sent = f.fake.requests
      .filter((r) => r.method === 'POST' && r.url.split('?')[0] === '/v1/messages')
      .map((r) => r.body)
      .join('\n');
    expect(sent).toContain('bottle-request');
    expect(sent).toContain('Ask this sandbox');
  });
});
