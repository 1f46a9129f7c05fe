/**
 * The credential proxy's usage accounting and budget, against the gateway in-process on loopback and
 * the fake Messages API: usage lines add up to exactly what the fake reported, replies reach the
 * client byte for byte, and a spent budget refuses the next call until the worker raises it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { GatewayConfigInput } from '../../../src/gateway/config.js';
import type { GatewayLine, UsageLine } from '../../../src/gateway/protocol.js';
import { addUsageByModel, type UsageByModel } from '../../../src/shared/token-usage.js';
import { startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.js';

const USAGE = { input: 1200, output: 7, cache_creation: 300, cache_read: 4000 };
const MODEL = 'claude-sonnet-4-5-20250929';

let fake: FakeAnthropic | undefined;
let gateway: RunningGateway | undefined;
let dir: string | undefined;

afterEach(async () => {
  await gateway?.close();
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  gateway = fake = dir = undefined;
});

async function start(budget?: GatewayConfigInput['budget'], usageIntervalMs = 50) {
  fake = await startFakeAnthropic({ usage: USAGE, model: MODEL, reply: 'one two three four five six seven' });
  dir = mkdtempSync(join(tmpdir(), 'cb-usage-'));
  const lines: GatewayLine[] = [];
  gateway = await startGateway(
    {
      identity: 'dev-u1s2g',
      proxy_port: 0,
      credential_port: 0,
      extra_hosts: { 'anthropic.test': '127.0.0.1' },
      routes: [{ id: 'a', role: 'anthropic-base-url', upstream: `http://anthropic.test:${fake.port}`, auth: 'oauth' }],
      ...(budget ? { budget } : {}),
    },
    { a: 'sk-real' },
    { onDecision: (line) => lines.push(line), log: () => {}, usageIntervalMs, budgetFile: join(dir, 'budget.json') },
  );
  return lines;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(stream: boolean, path = '/v1/messages?beta=true'): Promise<Reply> {
  const payload = JSON.stringify({ model: 'claude-sonnet-4-5', stream, messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: gateway!.credentialPort, path, method: 'POST', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.setHeader('content-type', 'application/json');
    req.end(payload);
  });
}

const usageLines = (lines: GatewayLine[]) => lines.filter((l): l is UsageLine => l.t === 'usage');
const summed = (lines: GatewayLine[]) =>
  usageLines(lines).reduce<UsageByModel>((sum, line) => addUsageByModel(sum, line.models), {});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('usage accounting', () => {
  it('adds up JSON and SSE replies (message_delta included) exactly, in aggregated lines', async () => {
    const lines = await start(undefined, 60_000);
    for (const stream of [false, true, true, false, true]) expect((await call(stream)).status).toBe(200);
    // Nothing is written before the interval; closing writes the rest.
    expect(usageLines(lines)).toHaveLength(0);
    await gateway!.close();
    gateway = undefined;
    expect(usageLines(lines)).toHaveLength(1);
    const n = 5;
    expect(summed(lines)).toEqual({
      [MODEL]: {
        input: n * USAGE.input,
        output: n * USAGE.output,
        cache_creation: n * USAGE.cache_creation,
        cache_read: n * USAGE.cache_read,
        calls: n,
      },
    });
  });

  it('passes every reply on byte for byte', async () => {
    await start();
    const direct = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: fake!.port, path: '/v1/messages', method: 'POST' }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.end(JSON.stringify({ model: 'claude-sonnet-4-5', stream: true, messages: [] }));
    });
    const proxied = (await call(true)).body.toString();
    const withoutIds = (text: string) => text.replace(/msg_fake_[0-9a-f]+/g, 'msg_ID');
    expect(withoutIds(proxied)).toBe(withoutIds(direct));
  });

  it('writes a busy route call once and counts every call in the traffic summary', async () => {
    const lines = await start();
    for (let i = 0; i < 5; i++) expect((await call(i % 2 === 0)).status).toBe(200);
    await gateway!.close();
    gateway = undefined;
    const routeCalls = lines.filter((l) => l.t === 'egress' && l.reason === 'credential_route');
    expect(routeCalls).toHaveLength(1);
    const summaries = lines.flatMap((l) => (l.t === 'summary' ? l.hosts : []));
    expect(summaries.filter((h) => h.host === 'anthropic.test').at(-1)).toMatchObject({ allowed: 5, denied: 0 });
  });

  it('does not count other paths (count_tokens)', async () => {
    const lines = await start(undefined, 60_000);
    expect((await call(false, '/v1/messages/count_tokens')).status).toBe(200);
    await gateway!.close();
    gateway = undefined;
    expect(usageLines(lines)).toHaveLength(0);
  });
});

describe('budget', () => {
  const perCall = USAGE.input + USAGE.output + USAGE.cache_creation + USAGE.cache_read;

  it('writes a line as the budget crosses each threshold, then refuses calls in the API error shape', async () => {
    // One call spends 83 % (warning), the second goes past it (exhausted): each crossing is written at once.
    const lines = await start({ unit: 'tokens', limit: Math.ceil(perCall * 1.2), spent: 0 }, 60_000);
    expect((await call(true)).status).toBe(200);
    await until(() => usageLines(lines).length === 1);
    expect((await call(false)).status).toBe(200);
    await until(() => usageLines(lines).length === 2);
    const refused = await call(true);
    expect(refused.status).toBe(402);
    expect(refused.headers['x-should-retry']).toBe('false');
    const body = JSON.parse(refused.body.toString()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('billing_error');
    expect(body.error.message).toContain('bottle budget dev-u1s2g --add');
    expect(fake!.requests.filter((r) => r.url.startsWith('/v1/messages'))).toHaveLength(2);
    expect(lines.some((l) => l.t === 'egress' && l.reason === 'budget_exhausted')).toBe(true);
  });

  it('continues what earlier runs spent, and lets calls through once the worker raises the limit', async () => {
    const lines = await start({ unit: 'tokens', limit: 1000, spent: 1000 });
    expect((await call(false)).status).toBe(402);
    writeFileSync(join(dir!, 'budget.json'), JSON.stringify({ limit: 1000 + perCall * 10 }));
    gateway!.reloadDecisions();
    expect(lines).toContainEqual({ t: 'budget_set', limit: 1000 + perCall * 10 });
    expect((await call(false)).status).toBe(200);
  });
});
