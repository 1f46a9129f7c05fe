/**
 * The gateway in-process on loopback: traffic through a CONNECT tunnel and a
 * plain HTTP forward is counted per host, and closing the gateway writes the
 * final summary line with those counts, numbered after the decisions.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { GatewayLine, SummaryLine } from '../../../src/gateway/protocol.js';

const BODY = 'x'.repeat(1000);
let upstream: Server;
let upstreamPort: number;
let gateway: RunningGateway | undefined;
const lines: GatewayLine[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(BODY));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
  gateway = await startGateway(
    {
      identity: 'implementer-ab12c',
      proxy_port: 0,
      credential_port: 0,
      allow: [`allowed.test:${upstreamPort}`],
      extra_hosts: { 'allowed.test': '127.0.0.1' },
      routes: [],
      limits: { max_header_bytes: 8192, requests_per_minute: 100_000 },
    },
    {},
    // Long enough that only the final summary is written during the test.
    { onDecision: (line) => lines.push(line), log: () => {}, summaryIntervalMs: 600_000 },
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

function plainPost(body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: gateway!.proxyPort,
        method: 'POST',
        path: `http://allowed.test:${upstreamPort}/upload`,
        headers: { host: `allowed.test:${upstreamPort}`, 'content-length': String(body.length) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A CONNECT whose tunnel carries one plain HTTP GET; resolves with everything the client received. */
function tunnelGet(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(gateway!.proxyPort, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.startsWith('HTTP/1.1 200 Connection Established\r\n\r\n') && received.endsWith(BODY)) {
        socket.end();
      }
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.write(
      `CONNECT ${host}:${upstreamPort} HTTP/1.1\r\nHost: ${host}:${upstreamPort}\r\n\r\n` +
        `GET / HTTP/1.1\r\nHost: ${host}:${upstreamPort}\r\nConnection: close\r\n\r\n`,
    );
  });
}

it('writes what it holds when asked, while it keeps running', async () => {
  expect(await plainPost('abc')).toBe(200);
  expect(lines.filter((l) => l.t === 'summary')).toHaveLength(0);
  gateway!.writeReports();
  const written = lines.filter((l): l is SummaryLine => l.t === 'summary');
  expect(written).toHaveLength(1);
  expect(written[0].hosts).toEqual([expect.objectContaining({ host: 'allowed.test', allowed: 1, methods: ['POST'] })]);
  lines.length = 0;
});

it('counts a tunnel and a plain forward per host and writes them in the final summary on close', async () => {
  expect(await plainPost('0123456789')).toBe(200);
  expect(await tunnelGet('allowed.test')).toContain(BODY);
  expect(await tunnelGet('denied.test')).toContain('403');
  await gateway!.close();
  gateway = undefined;

  const summaries = lines.filter((l): l is SummaryLine => l.t === 'summary');
  expect(summaries).toHaveLength(1);
  const [summary] = summaries;
  const decisions = lines.filter((l) => l.t === 'egress');
  expect(summary.n).toBe(Math.max(...decisions.map((d) => d.n)) + 1);
  const byHost = new Map(summary.hosts.map((h) => [h.host, h]));
  const allowed = byHost.get('allowed.test')!;
  // The POST forward and the GET inside the tunnel (a plain-HTTP tunnel is decided request by request),
  // after the POST of the test before: counters are the run's.
  expect(allowed).toMatchObject({ allowed: 3, denied: 0 });
  expect(allowed.methods.sort()).toEqual(['GET', 'POST']);
  expect(allowed.bytes_up).toBeGreaterThanOrEqual(10);
  // Both response bodies came down.
  expect(allowed.bytes_down).toBeGreaterThanOrEqual(2 * BODY.length);
  expect(byHost.get('denied.test')).toMatchObject({ allowed: 0, denied: 1, bytes_up: 0, bytes_down: 0 });
});
