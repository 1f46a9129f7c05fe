/**
 * Security round 2 (issue 12, findings 7, 8, 9 and 14) against the gateway
 * in-process on loopback: every way a request can reach a credential route
 * (credential port, absolute-form through the proxy port, an intercepted
 * tunnel) gets the same path and method checks, and a tunnel carries only
 * traffic that names its CONNECT host. The upstream is a local server that
 * reflects what it receives, so a leak would show up as the secret in a body.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { openTunnel } from '../../support/proxy-tunnel.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { EgressLine, GatewayLine } from '../../../src/gateway/protocol.js';

const SECRET = 'ghp_REAL_SECRET_do_not_leak';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

let reflector: Server;
let reflectorPort: number;
const seen: Seen[] = [];
let gateway: RunningGateway;
const lines: GatewayLine[] = [];

beforeAll(async () => {
  reflector = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.method} ${req.url}\n${JSON.stringify(req.headers)}`);
  });
  await new Promise<void>((resolve) => reflector.listen(0, '127.0.0.1', resolve));
  reflectorPort = (reflector.address() as AddressInfo).port;
  gateway = await startGateway(
    {
      identity: 'implementer-ab12c',
      proxy_port: 0,
      credential_port: 0,
      allow: [`allowed.test:${reflectorPort}`, 'notls.test'],
      extra_hosts: {
        'allowed.test': '127.0.0.1',
        'gh.test': '127.0.0.1',
        'anthropic.test': '127.0.0.1',
        'notls.test': '127.0.0.1',
      },
      routes: [
        {
          id: 'anthropic',
          role: 'anthropic-base-url',
          upstream: `http://anthropic.test:${reflectorPort}`,
          auth: 'oauth',
        },
        { id: 'gh', host: 'gh.test', upstream: `http://gh.test:${reflectorPort}`, auth: 'bearer' },
      ],
      limits: { max_header_bytes: 8192, requests_per_minute: 100_000 },
    },
    { anthropic: SECRET, gh: SECRET },
    { onDecision: (line) => lines.push(line), log: () => {} },
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => {
    reflector.close(() => resolve());
    reflector.closeAllConnections();
  });
});

interface Reply {
  status: number;
  body: string;
}

function send(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function lastEgress(): EgressLine {
  return lines.filter((l): l is EgressLine => l.t === 'egress').at(-1)!;
}

/** Opens a CONNECT tunnel; resolves with the socket once the 200 has been read. */

/** Writes `bytes` into a fresh tunnel and collects what comes back until either side closes. */
async function throughTunnel(authority: string, bytes: string | Buffer, settleMs = 300): Promise<string> {
  const socket = await openTunnel(gateway.proxyPort, authority);
  return new Promise((resolve) => {
    let received = '';
    const timer = setTimeout(() => socket.destroy(), settleMs);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', () => undefined);
    socket.write(bytes);
  });
}

/** One HTTPS request through an intercepted tunnel to a route host, trusting the gateway's CA. */
async function intercepted(host: string, path: string, method = 'GET'): Promise<Reply> {
  const tunnel = await openTunnel(gateway.proxyPort, `${host}:443`);
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      socket: tunnel,
      servername: host,
      ca: [gateway.interceptionCaPem!],
      ALPNProtocols: ['http/1.1'],
    });
    secure.on('error', reject);
    secure.on('secureConnect', () => {
      const req = httpRequest({ createConnection: () => secure, path, method, headers: { host } }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          secure.destroy();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on('error', reject);
      req.end();
    });
  });
}

function expectNothingForwarded(before: number, reply: Reply): void {
  expect(seen.length).toBe(before);
  expect(reply.body).not.toContain(SECRET);
}

describe('finding 7: the path-escape check runs on the raw target for every way in', () => {
  it.each(['http://gh.test/..%2f..%2fadmin', 'http://gh.test/v1/../admin', 'http://gh.test/v1/%2e%2e/admin'])(
    'proxy port, absolute-form to a route host: %s is refused (400 path_escape)',
    async (target) => {
      const before = seen.length;
      const reply = await send(gateway.proxyPort, target, 'GET', { host: 'gh.test' });
      expect(reply.status).toBe(400);
      expect(JSON.parse(reply.body)).toMatchObject({ error: 'path_escape' });
      expect(lastEgress()).toMatchObject({ decision: 'denied', host: 'gh.test', reason: 'path_escape' });
      expectNothingForwarded(before, reply);
    },
  );

  it('credential port: the same path is refused there too', async () => {
    const before = seen.length;
    const reply = await send(gateway.credentialPort, '/_host/gh.test/..%2f..%2fadmin');
    expect(reply.status).toBe(400);
    expectNothingForwarded(before, reply);
  });

  it('intercepted tunnel: the same path is refused there too', async () => {
    const before = seen.length;
    const reply = await intercepted('gh.test', '/..%2f..%2fadmin');
    expect(reply.status).toBe(400);
    expectNothingForwarded(before, reply);
  });

  it('control: a clean path through the proxy port reaches the route with the secret', async () => {
    const reply = await send(gateway.proxyPort, 'http://gh.test/repos/o/r?x=1', 'GET', { host: 'gh.test' });
    expect(reply.status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ url: '/repos/o/r?x=1', headers: { authorization: `Bearer ${SECRET}` } });
  });
});

describe('finding 8: TRACE and TRACK never reach a credential route', () => {
  it.each([
    ['credential port, anthropic route', () => gateway.credentialPort, '/v1/messages'],
    ['credential port, host route', () => gateway.credentialPort, '/_host/gh.test/user'],
    ['proxy port, absolute-form', () => gateway.proxyPort, 'http://gh.test/user'],
  ])('%s: TRACE is refused with 405', async (_way, port, path) => {
    const before = seen.length;
    const reply = await send(port(), path, 'TRACE', path.startsWith('http') ? { host: 'gh.test' } : {});
    expect(reply.status).toBe(405);
    expect(JSON.parse(reply.body)).toMatchObject({ error: 'method_not_allowed', method: 'TRACE' });
    expect(lastEgress()).toMatchObject({ decision: 'denied', method: 'TRACE', reason: 'method_not_allowed' });
    expectNothingForwarded(before, reply);
  });

  it('intercepted tunnel: TRACE is refused with 405', async () => {
    const before = seen.length;
    const reply = await intercepted('gh.test', '/user', 'TRACE');
    expect(reply.status).toBe(405);
    expectNothingForwarded(before, reply);
  });
});

describe('finding 9: "..;" and ".;" segments are escapes', () => {
  it.each([
    ['credential port', '/_host/gh.test/v1/..;/admin', () => gateway.credentialPort],
    ['credential port, anthropic route', '/v1/..;jsessionid=1/admin', () => gateway.credentialPort],
    ['proxy port', 'http://gh.test/v1/.;/admin', () => gateway.proxyPort],
  ])('%s: %s is refused', async (_way, path, port) => {
    const before = seen.length;
    const reply = await send(port(), path, 'GET', path.startsWith('http') ? { host: 'gh.test' } : {});
    expect(reply.status).toBe(400);
    expectNothingForwarded(before, reply);
  });

  it('intercepted tunnel: /..;/admin is refused', async () => {
    const before = seen.length;
    const reply = await intercepted('gh.test', '/..;/admin');
    expect(reply.status).toBe(400);
    expectNothingForwarded(before, reply);
  });
});

describe('finding 14: a tunnel carries only traffic that names its CONNECT host', () => {
  it('plain HTTP with a Host naming another host is refused (403) and never forwarded', async () => {
    const before = seen.length;
    const reply = await throughTunnel(
      `allowed.test:${reflectorPort}`,
      'GET /steal HTTP/1.1\r\nHost: evil.test\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(reply).toContain('tunnel_host_mismatch');
    expect(seen.length).toBe(before);
    expect(lastEgress()).toMatchObject({
      decision: 'denied',
      host: 'allowed.test',
      port: reflectorPort,
      reason: 'tunnel_host_mismatch',
    });
  });

  it('plain HTTP with an absolute target naming another host is refused', async () => {
    const before = seen.length;
    const reply = await throughTunnel(
      `allowed.test:${reflectorPort}`,
      `GET http://evil.test/ HTTP/1.1\r\nHost: allowed.test:${reflectorPort}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(seen.length).toBe(before);
  });

  it('plain HTTP naming the tunnel host is forwarded; a second one naming another host is not', async () => {
    const before = seen.length;
    const good = `GET /one HTTP/1.1\r\nHost: allowed.test:${reflectorPort}\r\n\r\n`;
    const bad = 'GET /two HTTP/1.1\r\nHost: evil.test\r\n\r\n';
    const reply = await throughTunnel(`allowed.test:${reflectorPort}`, good + bad, 1000);
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    // The tunnel either closes after the first answer or refuses the second request; it never forwards it.
    expect(reply).not.toMatch(/HTTP\/1\.1 200[\s\S]*HTTP\/1\.1 200/);
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/one']);
  });

  it('a TLS ClientHello without a server name to a named host is refused (tls_no_sni), nothing forwarded', async () => {
    const before = seen.length;
    await throughTunnel(`allowed.test:${reflectorPort}`, clientHelloWithoutSni());
    expect(seen.length).toBe(before);
    expect(lastEgress()).toMatchObject({
      decision: 'denied',
      host: 'allowed.test',
      method: 'CONNECT',
      reason: 'tls_no_sni',
    });
  });

  it('bytes that are neither TLS, HTTP nor SSH are refused (tunnel_unrecognized)', async () => {
    await throughTunnel(`allowed.test:${reflectorPort}`, Buffer.from([0, 1, 2, 3, 0xff, 0x0a]));
    expect(lastEgress()).toMatchObject({
      decision: 'denied',
      host: 'allowed.test',
      method: 'CONNECT',
      reason: 'tunnel_unrecognized',
    });
  });

  it('plain HTTP inside a tunnel to a credential-route host is refused (only TLS is intercepted)', async () => {
    const before = seen.length;
    await throughTunnel('gh.test:443', 'GET /user HTTP/1.1\r\nHost: gh.test\r\n\r\n');
    expect(seen.length).toBe(before);
    expect(lastEgress()).toMatchObject({
      decision: 'denied',
      host: 'gh.test',
      port: 443,
      reason: 'tunnel_unrecognized',
    });
  });
});

/** A minimal TLS ClientHello record with no extensions at all, so no server name. */
function clientHelloWithoutSni(): Buffer {
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0, 0, 2, 0x13, 0x01, 1, 0])]);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1, handshake.length >> 8, handshake.length & 0xff]), handshake]);
}
