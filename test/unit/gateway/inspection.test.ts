/**
 * Inspection of allowlisted HTTPS against the gateway in-process on loopback:
 * the gateway terminates TLS with its per-run CA, reads each request, applies
 * the entry's method and path rules and the request scanner, and forwards
 * over its own TLS connection that verifies the real upstream (a local
 * stand-in whose own CA the gateway is given). HTTP/1.1 keep-alive, chunked
 * bodies, `Expect: 100-continue` and WebSocket upgrades work through it; an
 * `inspect: false` entry stays end to end.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough, Transform } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { openTunnel } from '../../support/proxy-tunnel.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import { createInterceptionCa } from '../../../src/gateway/interception-ca.js';
import type { EgressLine, GatewayLine } from '../../../src/gateway/protocol.js';
import type { RequestScanner, ScanFinding } from '../../../src/gateway/request-scanner.js';
import { ScanBlockedError } from '../../../src/gateway/request-scanner.js';

const CANARY = 'CANARY-do-not-send';
const CANARY_FINDING: ScanFinding = {
  action: 'block',
  reason: 'canary',
  detail: { class: 'canary', rule: 'test canary', where: 'frame' },
};

interface Seen {
  host: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let upstream: HttpsServer;
let port: number;
let upstreamCaPem: string;
const seen: Seen[] = [];
const frames: string[] = [];
let gateway: RunningGateway;
const lines: GatewayLine[] = [];
const scanned: string[] = [];

/** A stand-in for the detectors: blocks the canary in a frame, records what each hook was shown. */
const scanner: RequestScanner = {
  checkHead: (request) => {
    scanned.push(`head ${request.method} ${request.url}`);
    return request.url.includes(CANARY)
      ? { ...CANARY_FINDING, detail: { ...CANARY_FINDING.detail, where: 'url' } }
      : undefined;
  },
  requestBody: () => new PassThrough(),
  responseBody: () =>
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        done(null, Buffer.from(chunk.toString('latin1').replaceAll('REAL-SECRET', '[scrubbed]'), 'latin1'));
      },
    }),
  checkFrame: (_request, payload) => {
    scanned.push(`frame ${payload.length}`);
    return payload.toString().includes(CANARY) ? CANARY_FINDING : undefined;
  },
};

beforeAll(async () => {
  const upstreamCa = createInterceptionCa('upstream', ['inspected.test', 'rules.test', 'pinned.test']);
  upstreamCaPem = upstreamCa.certificatePem;
  upstream = createHttpsServer(
    { SNICallback: (name, done) => done(null, upstreamCa.contextFor(name)) },
    (req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({
          host: req.headers.host ?? '',
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body,
        });
        if (req.url === '/chunked-reply') {
          res.write('first;');
          setTimeout(() => res.end('second'), 20);
          return;
        }
        res.setHeader('content-type', 'text/plain');
        res.end(`${req.method} ${req.url} ${body.length} REAL-SECRET`);
      });
    },
  );
  const wss = new WebSocketServer({ noServer: true });
  upstream.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer) => {
        frames.push(data.toString());
        ws.send(`echo ${data.toString()}`);
      });
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  port = (upstream.address() as AddressInfo).port;
  gateway = await startGateway(
    {
      identity: 'inspector-ab12c',
      proxy_port: 0,
      credential_port: 0,
      allow: [`inspected.test:${port}`, `rules.test:${port}`, `pinned.test:${port}`],
      entries: [
        { host: `inspected.test:${port}` },
        { host: `rules.test:${port}`, methods: ['GET', 'POST'], paths: ['/acme/**', '!/**/git-receive-pack'] },
        { host: `pinned.test:${port}`, inspect: false },
      ],
      extra_hosts: { 'inspected.test': '127.0.0.1', 'rules.test': '127.0.0.1', 'pinned.test': '127.0.0.1' },
      limits: { max_header_bytes: 8192, requests_per_minute: 100_000 },
    },
    {},
    { onDecision: (line) => lines.push(line), log: () => {}, upstreamCa: upstreamCaPem, scanner },
  );
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => {
    upstream.close(() => resolve());
    upstream.closeAllConnections();
  });
});

/** A CONNECT tunnel and TLS inside it, trusting `ca`; resolves once the handshake is done. */
async function secureTunnel(host: string, ca: string): Promise<TLSSocket> {
  const tunnel = await openTunnel(gateway.proxyPort, `${host}:${port}`);
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ socket: tunnel, servername: host, ca: [ca], ALPNProtocols: ['http/1.1'] });
    secure.on('error', reject);
    secure.on('secureConnect', () => resolve(secure));
  });
}

/** Requests over one inspected connection (keep-alive), counting the tunnels opened. */
function tunnelAgent(host: string, ca: string): { agent: Agent; opened: () => number } {
  let opened = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  Object.assign(agent, {
    createConnection: (_options: unknown, done: (err: Error | null, socket?: Socket) => void) => {
      opened++;
      secureTunnel(host, ca).then(
        (socket) => done(null, socket),
        (err: Error) => done(err),
      );
    },
  });
  return { agent, opened: () => opened };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  continued: boolean;
}

function send(
  agent: Agent,
  host: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string[]; waitForContinue?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = httpRequest(
      { agent, path, method: opts.method ?? 'GET', headers: { host: `${host}:${port}`, ...opts.headers } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, continued }));
      },
    );
    req.on('error', reject);
    const writeBody = () => {
      for (const piece of opts.body ?? []) req.write(piece);
      req.end();
    };
    if (opts.waitForContinue) {
      req.on('continue', () => {
        continued = true;
        writeBody();
      });
      req.flushHeaders();
    } else {
      writeBody();
    }
  });
}

function egressLines(): EgressLine[] {
  return lines.filter((l): l is EgressLine => l.t === 'egress');
}

describe('an inspected host', () => {
  it('serves several requests over one kept-alive connection, each read and scanned', async () => {
    const { agent, opened } = tunnelAgent('inspected.test', gateway.interceptionCaPem!);
    const first = await send(agent, 'inspected.test', '/one');
    const second = await send(agent, 'inspected.test', '/two');
    agent.destroy();
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(first.body).toBe('GET /one 0 [scrubbed]');
    expect(second.body).toBe('GET /two 0 [scrubbed]');
    expect(opened()).toBe(1);
    expect(scanned).toEqual(expect.arrayContaining(['head GET /one', 'head GET /two']));
  });

  it('streams chunked request and response bodies', async () => {
    const { agent } = tunnelAgent('inspected.test', gateway.interceptionCaPem!);
    const posted = await send(agent, 'inspected.test', '/upload', { method: 'POST', body: ['a'.repeat(5000), 'b'] });
    const chunkedReply = await send(agent, 'inspected.test', '/chunked-reply');
    agent.destroy();
    expect(posted.body).toBe('POST /upload 5001 [scrubbed]');
    const upload = seen.find((s) => s.url === '/upload')!;
    expect(upload.headers['transfer-encoding']).toBe('chunked');
    expect(chunkedReply.body).toBe('first;second');
  });

  it('answers Expect: 100-continue only once the request is admitted', async () => {
    const { agent } = tunnelAgent('inspected.test', gateway.interceptionCaPem!);
    const reply = await send(agent, 'inspected.test', '/expect', {
      method: 'PUT',
      headers: { expect: '100-continue', 'content-length': '5' },
      body: ['hello'],
      waitForContinue: true,
    });
    agent.destroy();
    expect(reply.continued).toBe(true);
    expect(reply.body).toBe('PUT /expect 5 [scrubbed]');
  });

  it('refuses a request the scanner blocks before anything is forwarded', async () => {
    const before = seen.length;
    const { agent } = tunnelAgent('inspected.test', gateway.interceptionCaPem!);
    const reply = await send(agent, 'inspected.test', `/q?k=${CANARY}`);
    agent.destroy();
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toMatchObject({ error: 'egress_denied', reason: 'canary' });
    expect(seen.length).toBe(before);
    expect(egressLines().at(-1)).toMatchObject({ decision: 'denied', reason: 'canary', detail: { where: 'url' } });
  });

  it('carries a WebSocket, scanning each frame, and closes it on a blocked frame', async () => {
    const socket = await secureTunnel('inspected.test', gateway.interceptionCaPem!);
    const ws = new WebSocket(`wss://inspected.test:${port}/ws`, { createConnection: () => socket });
    const replies: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send('hello'));
      ws.on('message', (data: Buffer) => {
        replies.push(data.toString());
        ws.send(`leak ${CANARY}`);
      });
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    expect(replies).toEqual(['echo hello']);
    expect(frames).toEqual(['hello']);
    expect(scanned.filter((s) => s.startsWith('frame')).length).toBeGreaterThanOrEqual(2);
    expect(egressLines().at(-1)).toMatchObject({ decision: 'denied', reason: 'canary', detail: { where: 'frame' } });
  });
});

describe('method and path rules', () => {
  it('lets the organisation through; refuses others, a push and a trick with a JSON 403 naming the rule', async () => {
    const { agent } = tunnelAgent('rules.test', gateway.interceptionCaPem!);
    const ok = await send(agent, 'rules.test', '/acme/repo.git/info/refs?service=git-upload-pack');
    const other = await send(agent, 'rules.test', '/other/repo');
    const push = await send(agent, 'rules.test', '/acme/repo.git/git-receive-pack', { method: 'POST', body: ['x'] });
    const trick = await send(agent, 'rules.test', '/acme/..;/other');
    const method = await send(agent, 'rules.test', '/acme/repo', { method: 'DELETE' });
    agent.destroy();
    expect(ok.status).toBe(200);
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body)).toMatchObject({
      error: 'egress_denied',
      reason: 'path_rule',
      detail: { class: 'path_rule', rule: `rules.test:${port} paths /acme/**,!/**/git-receive-pack`, where: 'url' },
    });
    expect(JSON.parse(push.body)).toMatchObject({ reason: 'path_rule' });
    expect(JSON.parse(trick.body)).toMatchObject({ reason: 'path_ambiguous' });
    expect(JSON.parse(method.body)).toMatchObject({ reason: 'method_rule', detail: { class: 'method_rule' } });
    expect(seen.filter((s) => s.host.startsWith('rules.test')).map((s) => s.url)).toEqual([
      '/acme/repo.git/info/refs?service=git-upload-pack',
    ]);
  });

  it('refuses a rule-breaking request with Expect: 100-continue without asking for its body', async () => {
    const { agent } = tunnelAgent('rules.test', gateway.interceptionCaPem!);
    const reply = await send(agent, 'rules.test', '/other/upload', {
      method: 'POST',
      headers: { expect: '100-continue', 'content-length': '5' },
      body: ['hello'],
      waitForContinue: true,
    });
    agent.destroy();
    expect(reply.status).toBe(403);
    expect(reply.continued).toBe(false);
  });
});

describe('an inspect: false entry', () => {
  it('stays end to end: the agent sees the upstream certificate, and the decision says not inspected', async () => {
    const socket = await secureTunnel('pinned.test', upstreamCaPem);
    const issuer = socket.getPeerCertificate().issuer.CN;
    socket.destroy();
    expect(issuer).toBe('claude-bottle gateway CA upstream');
    expect(egressLines().at(-1)).toMatchObject({
      decision: 'allowed',
      host: 'pinned.test',
      detail: { class: 'not_inspected' },
    });
  });

  it('is not covered by the gateway CA: a client trusting only that CA fails the handshake', async () => {
    await expect(secureTunnel('pinned.test', gateway.interceptionCaPem!)).rejects.toThrow();
  });
});

it('ScanBlockedError carries the finding (contract used by body scanners)', () => {
  expect(new ScanBlockedError(CANARY_FINDING).finding).toBe(CANARY_FINDING);
});
