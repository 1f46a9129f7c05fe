/**
 * The upstream of an inspected request is opened only once the body scan has
 * yielded bytes or the body's end: a canary in a small body is refused
 * without the upstream seeing even a connection, and a clean body still
 * arrives whole (through backpressure, for one larger than a socket buffer).
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';

const CANARY = `AKIA${'CANARYQ2'}TESTKEY7`;

let upstream: Server;
let upstreamPort: number;
let connections = 0;
const bodies: number[] = [];
let gateway: RunningGateway;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let length = 0;
    req.on('data', (c: Buffer) => (length += c.length));
    req.on('end', () => {
      bodies.push(length);
      res.end('ok');
    });
  });
  upstream.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
  gateway = await startGateway(
    {
      identity: 'deferred-ab12c',
      proxy_port: 0,
      credential_port: 0,
      allow: [`plain.test:${upstreamPort}`],
      extra_hosts: { 'plain.test': '127.0.0.1' },
      routes: [],
      dns_port: 0,
      dlp: { mode: 'block', canaries: ['aws_access_key_id'] },
      limits: { max_header_bytes: 16384, requests_per_minute: 100_000 },
    },
    { 'canary.aws_access_key_id': CANARY },
    { onDecision: () => {}, log: () => {} },
  );
});

afterAll(async () => {
  await gateway.close();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

function post(body: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: gateway.proxyPort,
        method: 'POST',
        path: `http://plain.test:${upstreamPort}/upload`,
        headers: {
          host: `plain.test:${upstreamPort}`,
          'content-length': String(body.length),
          connection: 'close',
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('an inspected request’s upstream', () => {
  it('is never connected for a canary in a small gzip body', async () => {
    const before = connections;
    const body = gzipSync(Buffer.from(`id=${CANARY}`));
    const reply = await post(body, { 'content-encoding': 'gzip' });
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.text)).toMatchObject({ reason: 'canary', where: 'body' });
    expect(connections).toBe(before);
  });

  it('is connected for a clean body, which arrives whole', async () => {
    const before = connections;
    const big = Buffer.alloc(8 * 1024 * 1024, 'a');
    const reply = await post(big);
    expect(reply).toEqual({ status: 200, text: 'ok' });
    expect(connections).toBe(before + 1);
    expect(bodies.at(-1)).toBe(big.length);
  });

  it('is connected for a request without a body', async () => {
    const reply = await post(Buffer.alloc(0));
    expect(reply).toEqual({ status: 200, text: 'ok' });
    expect(bodies.at(-1)).toBe(0);
  });
});
