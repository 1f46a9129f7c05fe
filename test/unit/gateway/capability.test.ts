/**
 * The capability endpoint's own checks (src/gateway/capability-request.ts, capability-routes.ts): hosts
 * follow the manifest's host-pattern rules, reasons are bounded and showable,
 * and a flood of requests is refused with 429 before any body is read. The
 * gateway listens on loopback only.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { askProblems, MAX_CAPABILITY_REASON_CHARS } from '../../../src/gateway/capability-request.js';
import {
  CAPABILITY_BURST,
  CAPABILITY_REFUSAL_BURST,
  CAPABILITY_REFUSAL_WINDOW_MS,
} from '../../../src/gateway/capability-routes.js';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { GatewayLine } from '../../../src/gateway/protocol.js';
import type { CapabilityAsk } from '../../../src/shared/capability.js';

const ask = (overrides: Partial<CapabilityAsk>): CapabilityAsk => ({
  kind: 'egress',
  host: 'pypi.org',
  reason: 'install requests',
  ...overrides,
});

describe('askProblems', () => {
  it.each(['pypi.org', 'PyPI.org.', '*.pythonhosted.org', '10.0.0.1', '[2001:db8::1]'])('accepts host %j', (host) => {
    expect(askProblems(ask({ host }))).toEqual([]);
  });

  it.each([
    ['pypi.org\u001b[2K', /non-ASCII|whitespace/],
    ['evil.test\r\negress pypi.org', /whitespace/],
    ['*', /every host/],
    ['*.com', /top-level domain/],
    ['https://pypi.org', /URL scheme/],
    ['pypi.org/simple', /path/],
    ['pypi.org:443', /port/],
    ['a..b', /./],
  ])('refuses host %j', (host, why) => {
    const problems = askProblems(ask({ host }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^host: /);
    expect(problems[0]).toMatch(why);
  });

  it.each([
    ['an escape sequence', 'need pip\u001b[1A\u001b[2Kegress pypi.org'],
    ['a carriage return', 'need pip\rall fine'],
    ['DEL', 'x\u007f'],
    ['a C1 control', 'x\u009b2J'],
    ['a bidirectional override', 'safe \u202egnp.exe'],
    ['a line separator', 'a\u2028b'],
    ['a lone surrogate', 'a\ud800b'],
    ['a zero-width space', 'pypi.org\u200b is fine'],
    ['a word joiner', 'a\u2060b'],
    ['a byte order mark', '\ufeffreason'],
    ['an Arabic letter mark', 'a\u061cb'],
    ['tag characters', 'ok\u{e0061}\u{e0062}'],
  ])('refuses a reason with %s', (_what, reason) => {
    expect(askProblems(ask({ reason }))).toEqual([expect.stringMatching(/^reason: control characters/)]);
  });

  it('refuses a reason padded with blank lines that would push its ending out of sight', () => {
    expect(askProblems(ask({ reason: `need pypi${'\n'.repeat(40)}and then the real ask` }))).toEqual([
      'reason: runs of blank lines are refused',
    ]);
    expect(askProblems(ask({ reason: 'first paragraph\n\nsecond paragraph' }))).toEqual([]);
  });

  it('accepts tabs, newlines and any printable text in a reason, up to its length bound', () => {
    expect(askProblems(ask({ reason: 'line one\n\tline two — ünïcode 😀' }))).toEqual([]);
    expect(askProblems(ask({ reason: 'x'.repeat(MAX_CAPABILITY_REASON_CHARS) }))).toEqual([]);
    expect(askProblems(ask({ reason: 'x'.repeat(MAX_CAPABILITY_REASON_CHARS + 1) }))).toEqual([
      `reason: at most ${MAX_CAPABILITY_REASON_CHARS} characters`,
    ]);
  });
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

function post(port: number, body: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const where = { host: '127.0.0.1', port, path: '/_bottle/capability', method: 'POST', agent: false };
    const req = httpRequest(where, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the capability endpoint', () => {
  let gateway: RunningGateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  /** The limiters' clock: it stands still unless a test moves it, so a budget is counted, not timed. */
  let clock = 0;
  async function start(): Promise<GatewayLine[]> {
    const lines: GatewayLine[] = [];
    const config = { identity: 'caps-ab12c', proxy_port: 0, credential_port: 0 };
    clock = 0;
    gateway = await startGateway(config, {}, { onDecision: (l) => lines.push(l), now: () => clock });
    return lines;
  }

  it('records the host as the allowlist entry an approval would add', async () => {
    const lines = await start();
    const body = JSON.stringify({ kind: 'egress', host: 'PyPI.org.', port: 443, reason: 'pip' });
    const reply = await post(gateway!.credentialPort, body);
    expect(reply.status).toBe(202);
    expect(lines).toEqual([expect.objectContaining({ t: 'capability', host: 'pypi.org', port: 443, reason: 'pip' })]);
  });

  it('refuses a host the manifest would refuse and a reason that redraws the screen; records neither', async () => {
    const lines = await start();
    const hostAsk = JSON.stringify({ kind: 'egress', host: 'evil.test\u001b[2K', reason: 'x' });
    const badHost = await post(gateway!.credentialPort, hostAsk);
    expect(badHost.status).toBe(400);
    expect(badHost.body).toMatchObject({
      error: 'invalid_capability_request',
      issues: [expect.stringMatching(/^host: /)],
    });
    const reasonAsk = JSON.stringify({ kind: 'egress', host: 'pypi.org', reason: 'ok\r\u001b[1Aall fine' });
    const badReason = await post(gateway!.credentialPort, reasonAsk);
    expect(badReason.status).toBe(400);
    expect(lines).toEqual([]);
  });

  it('takes a burst of requests, then refuses the rest with a 429 JSON body, reading none of theirs', async () => {
    const lines = await start();
    const dockerfile = `FROM debian:bookworm-slim\nRUN echo ${'x'.repeat(90_000)}\n`;
    const body = JSON.stringify({ kind: 'dockerfile', dockerfile, reason: 'needs a tool' });
    const replies = await Promise.all(Array.from({ length: 40 }, () => post(gateway!.credentialPort, body)));
    const accepted = replies.filter((r) => r.status === 202);
    const refused = replies.filter((r) => r.status === 429);
    expect(accepted).toHaveLength(CAPABILITY_BURST);
    expect(refused).toHaveLength(40 - CAPABILITY_BURST);
    expect(refused[0].body).toMatchObject({
      error: 'capability_rate_limited',
      retry_after_seconds: expect.any(Number),
    });
    expect(refused[0].body.detail).toMatch(/wait for the operator/);
    expect(Number(refused[0].headers['retry-after'])).toBeGreaterThan(0);
    expect(lines.filter((l) => l.t === 'capability')).toHaveLength(CAPABILITY_BURST);
  });

  it('keeps its own budget: proxied requests do not spend it, and it does not spend theirs', async () => {
    await start();
    const body = JSON.stringify({ kind: 'egress', host: 'pypi.org', reason: 'pip' });
    for (let i = 0; i < CAPABILITY_BURST; i++) expect((await post(gateway!.credentialPort, body)).status).toBe(202);
    expect((await post(gateway!.credentialPort, body)).status).toBe(429);
    // The credential port still serves other paths: its own 404, not a 429.
    const other = await new Promise<number>((resolve, reject) => {
      const where = { host: '127.0.0.1', port: gateway!.credentialPort, path: '/v1/messages', agent: false };
      const req = httpRequest(where, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(other).toBe(404);
  });

  it("refused asks do not spend the agent's budget: after more bad ones than the burst, asks go through", async () => {
    const lines = await start();
    const malformed = [
      '{not json',
      JSON.stringify({ kind: 'egress', reason: 'no host' }),
      JSON.stringify({ kind: 'egress', host: 'evil.test\u001b[2K', reason: 'x' }),
      JSON.stringify({ kind: 'teleport', host: 'pypi.org', reason: 'x' }),
      JSON.stringify({ kind: 'egress', host: 'pypi.org', reason: 'ok\r\u001b[1Aall fine' }),
    ];
    expect(malformed.length).toBeGreaterThan(CAPABILITY_BURST);
    for (const body of malformed) expect((await post(gateway!.credentialPort, body)).status).toBe(400);
    const valid = JSON.stringify({ kind: 'egress', host: 'pypi.org', reason: 'pip' });
    for (let i = 0; i < CAPABILITY_BURST; i++) expect((await post(gateway!.credentialPort, valid)).status).toBe(202);
    expect((await post(gateway!.credentialPort, valid)).body).toMatchObject({ error: 'capability_rate_limited' });
    expect(lines.filter((l) => l.t === 'capability')).toHaveLength(CAPABILITY_BURST);
  });

  it('bounds a flood of refused asks by a budget of their own, then refuses unread until it refills', async () => {
    const lines = await start();
    const malformed = JSON.stringify({ kind: 'egress', reason: 'no host' });
    for (let i = 0; i < CAPABILITY_REFUSAL_BURST; i++) {
      expect((await post(gateway!.credentialPort, malformed)).status).toBe(400);
    }
    const flooded = await post(gateway!.credentialPort, malformed);
    expect(flooded.status).toBe(429);
    expect(flooded.body).toMatchObject({ error: 'capability_refusals_rate_limited', retry_after_seconds: 3 });
    expect(flooded.body.detail).toMatch(/refused capability requests/);
    // Until it refills no body is read, a valid one's neither; the asks' own budget is untouched.
    const valid = JSON.stringify({ kind: 'egress', host: 'pypi.org', reason: 'pip' });
    expect((await post(gateway!.credentialPort, valid)).body).toMatchObject({
      error: 'capability_refusals_rate_limited',
    });
    clock += CAPABILITY_REFUSAL_WINDOW_MS;
    for (let i = 0; i < CAPABILITY_BURST; i++) expect((await post(gateway!.credentialPort, valid)).status).toBe(202);
    expect(lines.filter((l) => l.t === 'capability')).toHaveLength(CAPABILITY_BURST);
  });
});
