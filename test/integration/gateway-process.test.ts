/**
 * The gateway in-process on loopback, against local stand-ins: a plain HTTP
 * upstream, a TLS upstream (self-signed via the openssl CLI) and the fake
 * Anthropic API. `.test` names reach them only through extra_hosts or an
 * injected resolver; nothing leaves 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Duplex } from 'node:stream';
import { openTunnel } from '../support/proxy-tunnel.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatewayConfigInput } from '../../src/gateway/config.js';
import type { GatewayLine } from '../../src/gateway/protocol.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic.js';

const REAL_ANTHROPIC_TOKEN = 'sk-ant-oat01-REAL-SECRET-do-not-leak';
const REAL_HOST_ROUTE_TOKEN = 'ghp_REAL_HOST_SECRET_do_not_leak';
const PLACEHOLDER = 'placeholder-not-a-secret';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const opensslAvailable = hasOpenssl();
if (!opensslAvailable) console.warn('gateway-process: openssl CLI not found; skipping the TLS (CONNECT/SNI) cases');

interface CountingServer {
  server: Server;
  port: number;
  connections: () => number;
  seen: Array<{ url: string; headers: Record<string, unknown> }>;
}

async function listenCounting(server: Server): Promise<CountingServer> {
  let connections = 0;
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections, seen: [] };
}

function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!server?.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Sends raw bytes to a port and collects everything until the server closes. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('utf8')));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.write(text);
  });
}

interface SimpleResponse {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

function request(
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

function jsonBody(response: SimpleResponse): Record<string, unknown> {
  return JSON.parse(response.body) as Record<string, unknown>;
}

/**
 * An HTTPS request through a CONNECT tunnel to `host:443`, verifying the server against `ca` (none: the system store).
 */
async function httpsThroughTunnel(
  proxyPort: number,
  host: string,
  opts: { ca?: string; servername?: string; path: string; headers?: Record<string, string>; eager?: boolean },
): Promise<SimpleResponse> {
  const transport = opts.eager ? eagerTunnel(proxyPort, host) : await openTunnel(proxyPort, `${host}:443`);
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      socket: transport,
      servername: opts.servername ?? host,
      ca: opts.ca ? [opts.ca] : undefined,
      ALPNProtocols: ['http/1.1'],
    });
    secure.on('error', reject);
    secure.on('secureConnect', () => {
      const req = httpRequest(
        { createConnection: () => secure, path: opts.path, headers: { host, ...opts.headers } },
        (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => {
            secure.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  });
}

/**
 * A client that does not wait for the proxy's 200: its ClientHello goes out in
 * the same write as the CONNECT, so the gateway receives it as `head`.
 */
function eagerTunnel(proxyPort: number, host: string): Duplex {
  const raw = netConnect({ host: '127.0.0.1', port: proxyPort });
  let first = true;
  let answered = false;
  let buffered = Buffer.alloc(0);
  const relay = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      const connect = first
        ? Buffer.from(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`)
        : Buffer.alloc(0);
      first = false;
      raw.write(Buffer.concat([connect, chunk]), done);
    },
    destroy(err, done) {
      raw.destroy();
      done(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (answered) return void relay.push(chunk);
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    answered = true;
    const status = buffered.subarray(0, end).toString('latin1');
    if (!status.startsWith('HTTP/1.1 200')) return void relay.destroy(new Error(`tunnel refused: ${status}`));
    if (buffered.length > end + 4) relay.push(buffered.subarray(end + 4));
  });
  raw.on('end', () => relay.push(null));
  raw.on('error', (err) => relay.destroy(err));
  return relay;
}

describe('egress gateway (in-process, loopback)', () => {
  let certDir: string;
  let cert: Buffer | undefined;
  let plain: CountingServer;
  let tls: CountingServer | undefined;
  const tlsServerNames: string[] = [];
  let fake: FakeAnthropic;
  let gateway: RunningGateway;
  const lines: GatewayLine[] = [];
  const resolver = vi.fn(async (host: string): Promise<string[]> => {
    if (host === 'sneaky.test') return ['127.0.0.1'];
    if (host === 'internal-api.test') return ['127.0.0.2'];
    throw Object.assign(new Error(`no such host ${host}`), { code: 'ENOTFOUND' });
  });
  const egressLines = () => lines.filter((l) => l.t === 'egress');
  const lastEgress = () => egressLines().at(-1);

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'cb-gateway-test-'));
    plain = await listenCounting(
      createHttpServer((req, res) => {
        plain.seen.push({ url: req.url ?? '', headers: req.headers });
        res.end(`plain upstream saw ${req.url}`);
      }),
    );
    if (opensslAvailable) {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          join(certDir, 'key.pem'),
          '-out',
          join(certDir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=allowed.test',
          '-addext',
          'subjectAltName=DNS:allowed.test',
        ],
        { stdio: 'ignore' },
      );
      cert = readFileSync(join(certDir, 'cert.pem'));
      tls = await listenCounting(
        createHttpsServer(
          {
            key: readFileSync(join(certDir, 'key.pem')),
            cert,
            SNICallback: (servername, done) => {
              tlsServerNames.push(servername);
              done(null, undefined);
            },
          },
          (_req, res) => res.end('tls upstream says hi'),
        ) as unknown as Server,
      );
    }
    fake = await startFakeAnthropic({ holdStreamAfterFirstEvent: true });
    const allow = [`allowed.test:${plain.port}`, `sneaky.test:${plain.port}`];
    const routes: NonNullable<GatewayConfigInput['routes']> = [
      {
        id: 'anthropic',
        role: 'anthropic-base-url',
        upstream: `http://fake-anthropic.test:${fake.port}`,
        auth: 'oauth',
      },
      { id: 'gh', host: 'api.example.test', upstream: `http://api.example.test:${plain.port}`, auth: 'bearer' },
      { id: 'internal', host: 'internal-api.test', auth: 'header', header: 'x-private-token' },
    ];
    if (tls) {
      allow.push(`allowed.test:${tls.port}`);
      routes.push({
        id: 'selfsigned',
        host: 'selfsigned-route.test',
        upstream: `https://allowed.test:${tls.port}`,
        auth: 'bearer',
      });
    }
    gateway = await startGateway(
      {
        identity: 'implementer-ab12c',
        proxy_port: 0,
        credential_port: 0,
        allow,
        extra_hosts: {
          'allowed.test': '127.0.0.1',
          'fake-anthropic.test': '127.0.0.1',
          'api.example.test': '127.0.0.1',
        },
        routes,
        limits: { max_header_bytes: 4096, requests_per_minute: 10_000 },
      },
      {
        anthropic: REAL_ANTHROPIC_TOKEN,
        gh: REAL_HOST_ROUTE_TOKEN,
        internal: REAL_HOST_ROUTE_TOKEN,
        selfsigned: REAL_HOST_ROUTE_TOKEN,
      },
      { resolver, onDecision: (line) => lines.push(line), log: () => {} },
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([closeServer(plain?.server), closeServer(tls?.server), fake?.close()]);
    rmSync(certDir, { recursive: true, force: true });
  });

  describe('proxy port', () => {
    it('forwards an allowlisted plain HTTP request and reports it allowed', async () => {
      const response = await request(gateway.proxyPort, `http://allowed.test:${plain.port}/hello?x=1`, {
        headers: { host: `allowed.test:${plain.port}` },
      });
      expect(response.status).toBe(200);
      expect(response.body).toBe('plain upstream saw /hello?x=1');
      expect(lastEgress()).toMatchObject({
        decision: 'allowed',
        host: 'allowed.test',
        port: plain.port,
        method: 'GET',
        reason: 'allowlisted',
      });
    });

    it('refuses a host not on the list with a JSON 403, without DNS or any connection', async () => {
      const before = plain.connections();
      resolver.mockClear();
      const response = await request(gateway.proxyPort, `http://blocked.test:${plain.port}/`, {
        headers: { host: `blocked.test:${plain.port}` },
      });
      expect(response.status).toBe(403);
      const body = jsonBody(response);
      expect(body).toMatchObject({
        error: 'egress_denied',
        host: 'blocked.test',
        port: plain.port,
        reason: 'not_in_allowlist',
      });
      expect(body.how_to_request).toMatch(
        /POST http:\/\/127\.0\.0\.1:\d+\/_bottle\/capability .*"kind":"egress".*bottle approve implementer-ab12c/,
      );
      expect(resolver).not.toHaveBeenCalled();
      expect(plain.connections()).toBe(before);
      expect(lastEgress()).toMatchObject({ decision: 'denied', host: 'blocked.test', reason: 'not_in_allowlist' });
    });

    it('refuses CONNECT to a host not on the list without DNS', async () => {
      resolver.mockClear();
      const response = await rawExchange(
        gateway.proxyPort,
        'CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\n',
      );
      expect(response).toMatch(/^HTTP\/1\.1 403/);
      expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toMatchObject({
        error: 'egress_denied',
        host: 'blocked.test',
        port: 443,
      });
      expect(resolver).not.toHaveBeenCalled();
      expect(lastEgress()).toMatchObject({ decision: 'denied', method: 'CONNECT', reason: 'not_in_allowlist' });
    });

    it('refuses CONNECT to a port the pattern does not name', async () => {
      const before = plain.connections();
      const response = await rawExchange(
        gateway.proxyPort,
        'CONNECT allowed.test:1 HTTP/1.1\r\nHost: allowed.test:1\r\n\r\n',
      );
      expect(response).toMatch(/^HTTP\/1\.1 403/);
      expect(lastEgress()).toMatchObject({
        decision: 'denied',
        host: 'allowed.test',
        port: 1,
        reason: 'port_not_allowed',
      });
      expect(plain.connections()).toBe(before);
    });

    it('refuses an allowlisted name that resolves to a loopback address, without connecting', async () => {
      const before = plain.connections();
      const response = await request(gateway.proxyPort, `http://sneaky.test:${plain.port}/`, {
        headers: { host: `sneaky.test:${plain.port}` },
      });
      expect(response.status).toBe(403);
      expect(jsonBody(response)).toMatchObject({ error: 'egress_denied', reason: 'private_address' });
      expect(resolver).toHaveBeenCalledWith('sneaky.test');
      expect(plain.connections()).toBe(before);
      expect(lastEgress()).toMatchObject({ decision: 'denied', host: 'sneaky.test', reason: 'private_address' });
    });

    it('refuses a CONNECT to a name that resolves to a loopback address', async () => {
      const before = plain.connections();
      const response = await rawExchange(gateway.proxyPort, `CONNECT sneaky.test:${plain.port} HTTP/1.1\r\n\r\n`);
      expect(response).toMatch(/^HTTP\/1\.1 403/);
      expect(plain.connections()).toBe(before);
      expect(lastEgress()).toMatchObject({ method: 'CONNECT', reason: 'private_address' });
    });

    it('refuses an absolute-form request whose Host header names another host', async () => {
      const before = plain.connections();
      const response = await request(gateway.proxyPort, `http://allowed.test:${plain.port}/`, {
        headers: { host: 'blocked.test' },
      });
      expect(response.status).toBe(400);
      expect(jsonBody(response)).toMatchObject({ error: 'host_header_mismatch' });
      expect(plain.connections()).toBe(before);
      expect(lastEgress()).toMatchObject({ decision: 'denied', reason: 'bad_request' });
    });

    it('answers an origin-form request with a JSON 400', async () => {
      const response = await request(gateway.proxyPort, '/');
      expect(response.status).toBe(400);
      expect(jsonBody(response)).toMatchObject({ error: 'bad_request' });
    });

    it('answers oversized headers with 431 and a header_too_large denial', async () => {
      const response = await request(gateway.proxyPort, `http://allowed.test:${plain.port}/`, {
        headers: { host: `allowed.test:${plain.port}`, 'x-padding': 'a'.repeat(8192) },
      });
      expect(response.status).toBe(431);
      expect(jsonBody(response)).toMatchObject({ error: 'header_too_large' });
      expect(lastEgress()).toMatchObject({ decision: 'denied', reason: 'header_too_large' });
    });

    it.skipIf(!opensslAvailable)('tunnels TLS to an allowlisted host when the server name matches', async () => {
      const tunnel = await openTunnel(gateway.proxyPort, `allowed.test:${tls!.port}`);
      const body = await new Promise<string>((resolve, reject) => {
        const secure = tlsConnect({ socket: tunnel, servername: 'allowed.test', ca: cert }, () => {
          secure.write('GET / HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n');
        });
        let text = '';
        secure.on('data', (chunk) => (text += chunk));
        secure.on('end', () => resolve(text));
        secure.on('error', reject);
      });
      expect(body).toMatch(/^HTTP\/1\.1 200/);
      expect(body).toContain('tls upstream says hi');
      expect(
        egressLines()
          .filter((l) => l.t === 'egress' && l.method === 'CONNECT' && l.decision === 'allowed')
          .at(-1),
      ).toMatchObject({
        host: 'allowed.test',
        port: tls!.port,
        reason: 'allowlisted',
      });
    });

    it.skipIf(!opensslAvailable)('closes the tunnel when the TLS server name is not the CONNECT host', async () => {
      let handshakes = 0;
      tls!.server.on('secureConnection', () => (handshakes += 1));
      const tunnel = await openTunnel(gateway.proxyPort, `allowed.test:${tls!.port}`);
      const outcome = await new Promise<string>((resolve) => {
        const secure = tlsConnect(
          { socket: tunnel, servername: 'other.test', ca: cert, rejectUnauthorized: false },
          () => resolve('handshake completed'),
        );
        secure.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
        secure.on('close', () => resolve('closed'));
      });
      expect(outcome).not.toBe('handshake completed');
      expect(handshakes).toBe(0);
      expect(lastEgress()).toMatchObject({
        decision: 'denied',
        host: 'allowed.test',
        method: 'CONNECT',
        reason: 'tls_sni_mismatch',
      });
    });

    it('sends an absolute-form request for a credential-route host to the route with its secret', async () => {
      const response = await request(gateway.proxyPort, 'http://api.example.test/user', {
        headers: { host: 'api.example.test', authorization: `Bearer ${PLACEHOLDER}` },
      });
      expect(response.status).toBe(200);
      expect(plain.seen.at(-1)).toMatchObject({
        url: '/user',
        headers: { authorization: `Bearer ${REAL_HOST_ROUTE_TOKEN}` },
      });
      expect(lastEgress()).toMatchObject({ decision: 'allowed', host: 'api.example.test', reason: 'credential_route' });
    });

    it('HTTPS to a credential-route host: the gateway terminates TLS with its CA and injects the secret', async () => {
      expect(gateway.interceptionCaPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
      const response = await httpsThroughTunnel(gateway.proxyPort, 'api.example.test', {
        ca: gateway.interceptionCaPem!,
        path: '/repos/o/r?page=3',
        headers: { authorization: `Bearer ${PLACEHOLDER}` },
      });
      expect(response.status).toBe(200);
      expect(response.body).toBe('plain upstream saw /repos/o/r?page=3');
      expect(plain.seen.at(-1)).toMatchObject({
        url: '/repos/o/r?page=3',
        headers: { authorization: `Bearer ${REAL_HOST_ROUTE_TOKEN}` },
      });
      expect(lastEgress()).toMatchObject({
        decision: 'allowed',
        host: 'api.example.test',
        method: 'GET',
        reason: 'credential_route',
      });
    });

    it('works for a client sending its ClientHello right behind the CONNECT, without waiting for the 200', async () => {
      const response = await httpsThroughTunnel(gateway.proxyPort, 'api.example.test', {
        ca: gateway.interceptionCaPem!,
        path: '/eager',
        eager: true,
      });
      expect(response.status).toBe(200);
      expect(plain.seen.at(-1)).toMatchObject({
        url: '/eager',
        headers: { authorization: `Bearer ${REAL_HOST_ROUTE_TOKEN}` },
      });
    });

    it('an agent that does not trust the interception CA gets no answer, and nothing is forwarded', async () => {
      const before = plain.seen.length;
      await expect(httpsThroughTunnel(gateway.proxyPort, 'api.example.test', { path: '/user' })).rejects.toThrow(
        /self.signed|unable to verify|certificate/i,
      );
      expect(plain.seen.length).toBe(before);
    });

    it('an intercepted tunnel whose TLS names another host is refused as tls_sni_mismatch', async () => {
      const before = plain.seen.length;
      await expect(
        httpsThroughTunnel(gateway.proxyPort, 'api.example.test', {
          ca: gateway.interceptionCaPem!,
          servername: 'allowed.test',
          path: '/user',
        }),
      ).rejects.toThrow();
      expect(plain.seen.length).toBe(before);
      expect(lastEgress()).toMatchObject({
        decision: 'denied',
        host: 'api.example.test',
        method: 'CONNECT',
        reason: 'tls_sni_mismatch',
      });
    });

    it('a request inside an intercepted tunnel whose Host names another host is refused', async () => {
      const before = plain.seen.length;
      const response = await httpsThroughTunnel(gateway.proxyPort, 'api.example.test', {
        ca: gateway.interceptionCaPem!,
        path: '/user',
        headers: { host: 'allowed.test' },
      });
      expect(response.status).toBe(400);
      expect(plain.seen.length).toBe(before);
    });
  });

  describe('credential port', () => {
    it('forwards to the anthropic upstream with the real token instead of the placeholder', async () => {
      const response = await request(gateway.credentialPort, '/v1/messages?beta=true', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${PLACEHOLDER}`,
          'x-api-key': PLACEHOLDER,
        },
        body: JSON.stringify({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(response.status).toBe(200);
      expect(jsonBody(response)).toMatchObject({ type: 'message', content: [{ type: 'text' }] });
      const seen = fake.requests.at(-1)!;
      expect(seen.url).toBe('/v1/messages?beta=true');
      expect(seen.headers.authorization).toBe(`Bearer ${REAL_ANTHROPIC_TOKEN}`);
      expect(seen.headers['x-api-key']).toBeUndefined();
      expect(seen.headers.host).toBe(`fake-anthropic.test:${fake.port}`);
      expect(lastEgress()).toMatchObject({
        decision: 'allowed',
        host: 'fake-anthropic.test',
        port: fake.port,
        method: 'POST',
        reason: 'credential_route',
      });
    });

    it('streams server-sent events through without buffering', async () => {
      const finishedBefore = fake.streamsFinished();
      let streamText = '';
      let resolveFirstChunk: (chunk: string) => void = () => {};
      let resolveEnd: () => void = () => {};
      const firstChunk = new Promise<string>((resolve) => (resolveFirstChunk = resolve));
      const ended = new Promise<void>((resolve) => (resolveEnd = resolve));
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: gateway.credentialPort,
          path: '/v1/messages',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          agent: false,
        },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (streamText === '') resolveFirstChunk(chunk);
            streamText += chunk;
          });
          res.on('end', () => resolveEnd());
        },
      );
      req.end(
        JSON.stringify({
          model: 'claude-test',
          max_tokens: 16,
          stream: true,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      );

      // The fake holds the rest of the stream until released: a buffering proxy would deliver nothing yet.
      const first = await Promise.race([
        firstChunk,
        new Promise<string>((resolve) => setTimeout(() => resolve('(nothing within 5 s)'), 5000)),
      ]);
      expect(first).toContain('event: message_start');
      expect(fake.streamsFinished()).toBe(finishedBefore);
      fake.releaseStream();
      await ended;
      const events = [...streamText.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
      expect(events).toEqual([
        'message_start',
        'content_block_start',
        ...events.filter((e) => e === 'content_block_delta'),
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]);
      expect(events.filter((e) => e === 'content_block_delta').length).toBeGreaterThan(1);
      expect(streamText).toContain('"type":"text_delta"');
    });

    it.each(['/v1/%2e%2e/admin', '/v1/../admin', '//v1/messages', '/v1\\messages'])(
      'refuses the path escape %s',
      async (path) => {
        const before = fake.requests.length;
        const response = await rawExchange(
          gateway.credentialPort,
          `GET ${path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n`,
        );
        expect(response).toMatch(/^HTTP\/1\.1 400/);
        expect(response).toContain('"error":"path_escape"');
        expect(fake.requests.length).toBe(before);
        expect(lastEgress()).toMatchObject({ decision: 'denied', reason: 'path_escape' });
      },
    );

    it('serves /_host/<host>/ for a host route with that route secret', async () => {
      const response = await request(gateway.credentialPort, '/_host/api.example.test/repos/o/r?page=2', {
        headers: { authorization: `token ${PLACEHOLDER}` },
      });
      expect(response.status).toBe(200);
      expect(plain.seen.at(-1)).toMatchObject({
        url: '/repos/o/r?page=2',
        headers: { authorization: `Bearer ${REAL_HOST_ROUTE_TOKEN}` },
      });
    });

    it('still applies the address policy to a route upstream that resolves to a private address', async () => {
      const response = await request(gateway.credentialPort, '/_host/internal-api.test/x');
      expect(response.status).toBe(403);
      expect(jsonBody(response)).toMatchObject({
        error: 'egress_denied',
        host: 'internal-api.test',
        port: 443,
        reason: 'private_address',
      });
      expect(response.body).not.toContain(REAL_HOST_ROUTE_TOKEN);
      expect(lastEgress()).toMatchObject({ decision: 'denied', host: 'internal-api.test', reason: 'private_address' });
    });

    it.skipIf(!opensslAvailable)(
      'connects an https route upstream by its name (SNI) and refuses a certificate it cannot verify',
      async () => {
        tlsServerNames.length = 0;
        const response = await request(gateway.credentialPort, '/_host/selfsigned-route.test/x');
        expect(response.status).toBe(502);
        expect(jsonBody(response)).toMatchObject({ error: 'upstream_unreachable', host: 'allowed.test' });
        expect(tlsServerNames).toContain('allowed.test');
      },
    );

    it('answers 404 for /_host/ of a host without a route', async () => {
      const response = await request(gateway.credentialPort, '/_host/blocked.test/x');
      expect(response.status).toBe(404);
      expect(jsonBody(response)).toMatchObject({ error: 'no_credential_route', host: 'blocked.test' });
    });

    it('accepts a capability request and emits a capability line', async () => {
      const response = await request(gateway.credentialPort, '/_bottle/capability', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'egress', host: 'pypi.org', port: 443, reason: 'install requests' }),
      });
      expect(response.status).toBe(202);
      const body = jsonBody(response);
      expect(body).toMatchObject({ status: 'pending' });
      expect(body.note).toMatch(/bottle approve\/deny; requests are decided one at a time/);
      expect(lines.at(-1)).toMatchObject({
        t: 'capability',
        request_id: body.request_id,
        kind: 'egress',
        host: 'pypi.org',
        port: 443,
        reason: 'install requests',
      });
      expect(lines.at(-1)).not.toHaveProperty('dockerfile');
    });

    it('rejects a capability request that fails validation', async () => {
      const response = await request(gateway.credentialPort, '/_bottle/capability', {
        method: 'POST',
        body: JSON.stringify({ kind: 'root', reason: 'x' }),
      });
      expect(response.status).toBe(400);
      expect(jsonBody(response)).toMatchObject({ error: 'invalid_capability_request' });
    });

    it('rejects a capability request over the size limit', async () => {
      const response = await request(gateway.credentialPort, '/_bottle/capability', {
        method: 'POST',
        body: JSON.stringify({ kind: 'dockerfile', dockerfile: 'x'.repeat(200_000), reason: 'big' }),
      });
      expect(response.status).toBe(413);
    });
  });

  it('numbers every output line from 1 and never prints a secret', () => {
    const numbers = lines.map((l) => ('n' in l ? l.n : -1));
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
    const everything = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(everything).not.toContain(REAL_ANTHROPIC_TOKEN);
    expect(everything).not.toContain(REAL_HOST_ROUTE_TOKEN);
    for (const line of lines) expect(typeof (line as { at?: string }).at).toBe('string');
  });
});

describe('egress gateway connects to the address it checked', () => {
  it('resolves once and opens the tunnel to that address, never re-resolving', async () => {
    // 203.0.113.0/24 is TEST-NET-3: it passes the address policy, and the injected
    // connector redirects the tunnel to a loopback echo server, so nothing leaves 127.0.0.1.
    const echo = createNetServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as AddressInfo).port;
    const answers = [['203.0.113.10'], ['127.0.0.1']];
    const resolver = vi.fn(async () => answers.shift() ?? []);
    const dialled: Array<[string, number]> = [];
    const gateway = await startGateway(
      { identity: 'implementer-rb001', proxy_port: 0, credential_port: 0, allow: ['rebind.test:22'] },
      {},
      {
        resolver,
        connect: (address, port) => {
          dialled.push([address, port]);
          return netConnect({ host: '127.0.0.1', port: echoPort });
        },
        log: () => {},
      },
    );
    try {
      const tunnel = await openTunnel(gateway.proxyPort, 'rebind.test:22');
      const echoed = await new Promise<string>((resolve) => {
        tunnel.once('data', (chunk) => resolve(chunk.toString()));
        // A tunnel's first bytes must name a protocol the gateway can judge; SSH is taken on port 22.
        tunnel.write('SSH-2.0-ping\r\n');
      });
      tunnel.destroy();
      expect(echoed).toBe('SSH-2.0-ping\r\n');
      expect(resolver).toHaveBeenCalledTimes(1);
      expect(dialled).toEqual([['203.0.113.10', 22]]);
    } finally {
      await gateway.close();
      await new Promise<void>((resolve) => echo.close(() => resolve()));
    }
  });
});

describe('egress gateway rate limit', () => {
  it('answers 429 once the per-minute budget is spent', async () => {
    const lines: GatewayLine[] = [];
    const gateway = await startGateway(
      { identity: 'implementer-zz999', proxy_port: 0, credential_port: 0, limits: { requests_per_minute: 3 } },
      {},
      { onDecision: (line) => lines.push(line), resolver: async () => [], log: () => {} },
    );
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await request(gateway.proxyPort, 'http://blocked.test/', {
          headers: { host: 'blocked.test' },
        });
        statuses.push(response.status);
        if (response.status === 429) expect(jsonBody(response)).toMatchObject({ error: 'rate_limited' });
      }
      expect(statuses).toEqual([403, 403, 403, 429, 429]);
      expect(lines.filter((l) => l.t === 'egress' && l.reason === 'rate_limited')).toHaveLength(2);
    } finally {
      await gateway.close();
    }
  });

  it('makes no interception CA when there is no host route (every tunnel stays end to end)', async () => {
    const gateway = await startGateway(
      { identity: 'implementer-zz998', proxy_port: 0, credential_port: 0 },
      {},
      { resolver: async () => [], log: () => {} },
    );
    try {
      expect(gateway.interceptionCaPem).toBeUndefined();
    } finally {
      await gateway.close();
    }
  });
});
