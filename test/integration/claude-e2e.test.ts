import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIAL_PLACEHOLDER } from '../../src/plan/agent-env.js';
import { LABELS } from '../../src/shared/names.js';
import { startClaudeFixture, TEST_TOKEN_ENV, type ClaudeFixture } from '../support/claude-fixture.js';
import { execIn } from '../support/docker.js';
import { identityFrom, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { show } from '../support/workers.js';

/**
 * The real Claude Code CLI in a real bottle, against a local fake Messages
 * API reached only through the gateway's credential proxy: the agent holds a
 * placeholder, the fake receives the real secret, streaming answers flow
 * through, and a missing secret stops `start` before anything exists.
 */
let h: BottleHarness;
const fixtures: ClaudeFixture[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const f of fixtures) await f.close();
  await h?.cleanup();
});

async function fixture(opts: Parameters<typeof startClaudeFixture>[1] = {}): Promise<ClaudeFixture> {
  const f = await startClaudeFixture(h, opts);
  fixtures.push(f);
  return f;
}

function stateEntries(): string[] {
  const dir = join(h.home, 'state');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function messageRequests(f: ClaudeFixture) {
  return f.fake.requests.filter((r) => r.method === 'POST' && r.url.split('?')[0] === '/v1/messages');
}

describe('claude -p in a bottle against the fake Messages API', () => {
  it('oauth route: prints fake answer; fake sees only the real secret as Bearer; stream served as SSE', async () => {
    const f = await fixture({ reply: 'Bottled greetings from the fake API.' });
    const run = await h.cli(['--manifest', f.manifestPath, 'start', f.agent, '--', '-p', 'say hi'], { env: f.env });
    expect(run.code, show(run)).toBe(0);
    // Non-TTY start streams the agent container's output to stdout.
    expect(run.stdout).toContain('Bottled greetings from the fake API.');

    const messages = messageRequests(f);
    expect(messages.length).toBeGreaterThan(0);
    for (const r of f.fake.requests) {
      // Every request that reached the fake went through the credential proxy,
      // which swapped the placeholder for the secret.
      expect(r.headers.authorization).toBe(`Bearer ${f.secret}`);
      expect(r.headers['x-api-key']).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain(CREDENTIAL_PLACEHOLDER);
      expect(r.body).not.toContain(CREDENTIAL_PLACEHOLDER);
    }
    // Claude Code streams; the fake answered those as server-sent events and finished them.
    const streamed = messages.filter((r) => (JSON.parse(r.body) as { stream?: boolean }).stream === true);
    expect(streamed.length).toBeGreaterThan(0);
    expect(f.fake.streamsFinished()).toBe(streamed.length);

    // With the bottle's quiet agent environment Claude Code sends nothing but Messages API calls
    // (without it: a HEAD /api/hello probe and ~13 s spent on unreachable telemetry hosts).
    console.log(`claude -p requests: ${f.fake.requests.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    expect(
      f.fake.requests.map((r) => `${r.method} ${r.url.split('?')[0]}`).filter((r) => r !== 'POST /v1/messages'),
    ).toEqual([]);
    const identity = /bottle ([a-z0-9_-]+-[0-9a-z]{5}): starting/.exec(run.stderr)?.[1];
    expect(identity, run.stderr).toBeDefined();
    const events = await h.log.read(identity!);
    expect(events.filter((e) => e.type === 'egress.denied').map((e) => e.data)).toEqual([]);
    expect(
      events.filter((e) => e.type === 'egress.allowed').map((e) => (e.data as { reason: string }).reason),
    ).toContain('credential_route');
  });

  it('api-key route: the fake sees the real secret as x-api-key and no Authorization header', async () => {
    const f = await fixture({ auth: 'api-key', bottle: 'claude-api', reply: 'Answered with an API key.' });
    const run = await h.cli(['--manifest', f.manifestPath, 'start', f.agent, '--', '-p', 'say hi'], { env: f.env });
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain('Answered with an API key.');
    expect(messageRequests(f).length).toBeGreaterThan(0);
    for (const r of f.fake.requests) {
      expect(r.headers['x-api-key']).toBe(f.secret);
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  it('agent holds only the placeholder (no secret in container env); the fake never sees the placeholder', async () => {
    const f = await fixture({ agents: [{ name: 'holder', command: ['sleep', '600'] }] });
    const identity = identityFrom(
      await h.cli(['--manifest', f.manifestPath, 'start', f.agent, '--detach'], { env: f.env }),
    );
    await h.waitForEvent(identity, 'agent.started');
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const info = await agent.inspect();
    const env = Object.fromEntries(
      (info.Config.Env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    expect(env.CLAUDE_CODE_OAUTH_TOKEN).toBe(CREDENTIAL_PLACEHOLDER);
    expect(env.ANTHROPIC_BASE_URL).toMatch(/^http:\/\/[0-9.]+:3129$/);
    expect(env[TEST_TOKEN_ENV]).toBeUndefined();
    expect(JSON.stringify(info)).not.toContain(f.secret);
    // Now use the credential from inside, as Claude Code would:
    // the placeholder goes in, the secret comes out at the fake.
    const { output: out } = await execIn(
      agent,
      [
        'sh',
        '-c',
        'curl -sS -X POST "$ANTHROPIC_BASE_URL/v1/messages" -H "authorization: Bearer $CLAUDE_CODE_OAUTH_TOKEN" ' +
          '-H "content-type: application/json" -d \'{"model":"m","max_tokens":5,"messages":[]}\'',
      ],
      { user: 'node' },
    );
    expect(out).toContain('"type":"message"');
    expect(f.fake.requests.length).toBe(1);
    expect(f.fake.requests[0].headers.authorization).toBe(`Bearer ${f.secret}`);
    expect(JSON.stringify(f.fake.requests)).not.toContain(CREDENTIAL_PLACEHOLDER);
    await h.cli(['stop', identity]);
  });

  it('a route whose secret is missing: one clear line, exit 1, nothing created and no bottle listed', async () => {
    const f = await fixture({ bottle: 'nosecret', agents: [{ name: 'unset' }] });
    const before = await h.cli(['list', '--all', '--format', 'json']);
    const stateBefore = stateEntries();
    // f.env is deliberately not passed: TEST_ANTHROPIC_TOKEN is unset for this CLI run.
    expect(h.env[TEST_TOKEN_ENV]).toBeUndefined();
    const run = await h.cli(['--manifest', f.manifestPath, 'start', f.agent, '--', '-p', 'hi']);
    expect(run.code, show(run)).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(TEST_TOKEN_ENV);
    expect(lines[0]).toMatch(/not set/);
    expect(run.stdout).toBe('');
    const after = await h.cli(['list', '--all', '--format', 'json']);
    const agentsAfter = (JSON.parse(after.stdout || '[]') as Array<{ agent: string }>).map((b) => b.agent);
    expect(agentsAfter).not.toContain('unset');
    expect(after.stdout).toBe(before.stdout);
    const filters = JSON.stringify({ label: [`${LABELS.agent}=unset`] });
    expect(await h.docker.listContainers({ all: true, filters })).toHaveLength(0);
    expect(await h.docker.listNetworks({ filters })).toHaveLength(0);
    // Not even a state folder (and so no secrets file) was made.
    expect(stateEntries()).toEqual(stateBefore);
  });
});
