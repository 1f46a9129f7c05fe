/**
 * Kept-alive upstream connections through the gateway in-process on loopback: inspected HTTPS
 * requests from separate client tunnels share one upstream connection, and so do credential-route
 * calls. When the upstream drops a reused connection as a request arrives on it (the stale-socket
 * race), a GET is sent once more on a new connection and answered; a POST with a body is not sent
 * again (the agent gets the gateway's 502, the upstream saw it once). Stopping the gateway closes
 * its idle upstream connections.
 */
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { openTunnel } from '../../support/proxy-tunnel.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import { createInterceptionCa } from '../../../src/gateway/interception-ca.js';

interface Seen {
  method: string;
  url: string;
  body: string;
  /** Which upstream connection (numbered by arrival) carried it. */
  connection: number;
}

/** An upstream that numbers its connections and, when told to, drops a reused one as a request arrives. */
interface CountingUpstream {
  server: HttpServer | HttpsServer;
  port: number;
  seen: Seen[];
  sockets: Socket[];
  /** How a reused connection is dropped: before any answer, or after the first bytes of one. */
  dropReused: false | 'unanswered' | 'half-answered';
}

const logs: string[] = [];
let gateway: RunningGateway;
let inspected: CountingUpstream;
let routed: CountingUpstream;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function countingUpstream(
  create: (handler: Handler) => HttpServer | HttpsServer,
  connectionEvent: 'connection' | 'secureConnection',
): Promise<CountingUpstream> {
  const seen: Seen[] = [];
  const sockets: Socket[] = [];
  const served = new WeakSet<Socket>();
  const server = create((req, res) => {
    const socket = req.socket;
    const connection = sockets.indexOf(socket);
    if (upstream.dropReused && served.has(socket)) {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: '', connection });
      // The race as the gateway meets it: the request is written, the connection ends, nothing is answered.
      if (upstream.dropReused === 'unanswered') socket.destroy();
      else socket.write('HTTP/1.1 200 OK\r\n', () => socket.destroy());
      return;
    }
    served.add(socket);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, connection });
      res.end(`${req.method} ${req.url} ${body.length}`);
    });
  });
  server.on(connectionEvent, (socket: Socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstream: CountingUpstream = {
    server,
    port: (server.address() as AddressInfo).port,
    seen,
    sockets,
    dropReused: false,
  };
  return upstream;
}

beforeAll(async () => {
  const ca = createInterceptionCa('reuse upstream', ['inspected.test']);
  inspected = await countingUpstream(
    (handler) => createHttpsServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, handler),
    'secureConnection',
  );
  routed = await countingUpstream((handler) => createHttpServer(handler), 'connection');
  gateway = await startGateway(
    {
      identity: 'reuse-ab12c',
      proxy_port: 0,
      credential_port: 0,
      allow: [`inspected.test:${inspected.port}`],
      entries: [{ host: `inspected.test:${inspected.port}` }],
      extra_hosts: { 'inspected.test': '127.0.0.1', 'route.test': '127.0.0.1' },
      routes: [{ id: 'r', host: 'route.test', upstream: `http://route.test:${routed.port}`, auth: 'bearer' }],
      limits: { max_header_bytes: 8192, requests_per_minute: 100_000 },
    },
    { r: 'route-secret' },
    { onDecision: () => {}, log: (message) => logs.push(message), upstreamCa: ca.certificatePem },
  );
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  for (const upstream of [inspected, routed]) {
    await new Promise<void>((resolve) => {
      upstream.server.close(() => resolve());
      upstream.server.closeAllConnections();
    });
  }
});

beforeEach(() => {
  for (const upstream of [inspected, routed]) {
    upstream.seen.length = 0;
    upstream.dropReused = false;
  }
  logs.length = 0;
});

/** One request in a CONNECT tunnel of its own, with TLS trusting the gateway's CA. */
async function throughTunnel(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  const tunnel = await openTunnel(gateway.proxyPort, `inspected.test:${inspected.port}`);
  const secure = await new Promise<TLSSocket>((resolve, reject) => {
    const tls = tlsConnect({ socket: tunnel, servername: 'inspected.test', ca: [gateway.interceptionCaPem!] });
    tls.on('error', reject);
    tls.on('secureConnect', () => resolve(tls));
  });
  try {
    return await exchange(
      { createConnection: () => secure, path, headers: { host: `inspected.test:${inspected.port}` } },
      method,
      body,
    );
  } finally {
    secure.destroy();
  }
}

/** One call on the credential port's host route, as an agent makes it. */
function throughRoute(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  const where = { host: '127.0.0.1', port: gateway.credentialPort, path: `/_host/route.test${path}`, agent: false };
  return exchange(where, method, body);
}

function exchange(options: RequestOptions, method: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...options, method }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ways = [
  { name: 'an inspected host', send: throughTunnel, upstream: () => inspected },
  { name: 'a credential route', send: throughRoute, upstream: () => routed },
];

describe.each(ways)('kept-alive upstream connections, $name', ({ send, upstream }) => {
  it('carry requests of separate client connections over one upstream connection', async () => {
    const before = upstream().sockets.length;
    const first = await send('GET', '/one');
    const second = await send('GET', '/two');
    expect([first, second]).toEqual([
      { status: 200, body: 'GET /one 0' },
      { status: 200, body: 'GET /two 0' },
    ]);
    expect(upstream().sockets.length - before).toBeLessThanOrEqual(1);
    expect(upstream().seen.map((s) => s.connection)).toEqual([
      upstream().seen[0]!.connection,
      upstream().seen[0]!.connection,
    ]);
  });

  it('send a GET once more, on a new connection, when the reused one is dropped before any answer', async () => {
    await send('GET', '/warm');
    upstream().dropReused = 'unanswered';
    const answer = await send('GET', '/again');
    expect(answer).toEqual({ status: 200, body: 'GET /again 0' });
    const tries = upstream().seen.filter((s) => s.url.endsWith('/again'));
    expect(tries).toHaveLength(2);
    expect(tries[0]!.connection).not.toBe(tries[1]!.connection);
    expect(logs.some((line) => line.includes('sent again'))).toBe(true);
  });

  it('do not send a POST with a body again: the agent gets an error, the upstream saw it at most once', async () => {
    await send('GET', '/warm');
    upstream().dropReused = 'unanswered';
    const answer = await send('POST', '/upload', 'a body that must not be sent twice');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'upstream_unreachable' });
    expect(upstream().seen.filter((s) => s.url.endsWith('/upload')).length).toBeLessThanOrEqual(1);
    expect(logs.some((line) => line.includes('sent again'))).toBe(false);
  });

  it('do not send a GET again once a byte of the answer arrived', async () => {
    await send('GET', '/warm');
    upstream().dropReused = 'half-answered';
    const answer = await send('GET', '/half');
    expect(answer.status).toBe(502);
    expect(upstream().seen.filter((s) => s.url.endsWith('/half'))).toHaveLength(1);
  });
});

describe('stopping the gateway', () => {
  it('closes its idle upstream connections', async () => {
    await throughTunnel('GET', '/idle');
    await throughRoute('GET', '/idle');
    const open = [inspected, routed].flatMap((u) => u.sockets.filter((s) => !s.destroyed));
    expect(open.length).toBeGreaterThan(0);
    await gateway.close();
    await Promise.all(open.map((s) => (s.destroyed ? undefined : new Promise((r) => s.once('close', r)))));
    expect(open.every((s) => s.destroyed)).toBe(true);
  });
});
