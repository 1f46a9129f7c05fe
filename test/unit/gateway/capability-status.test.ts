/**
 * `GET /_bottle/capability/<id>` and the decisions folder (src/gateway/capability-routes.ts and
 * capability-book.ts): a request is pending until the worker writes its decision file; a waiting status
 * request is answered as soon as the gateway takes the file in; an approved egress entry is enforced
 * before the agent hears of it. Loopback only.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import { decisionFileName, type DecisionFile, type GatewayLine } from '../../../src/gateway/protocol.js';

interface Reply {
  status: number;
  text: string;
}

function call(port: number, method: string, path: string, body?: string, accept?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = accept ? { accept } : {};
    const req = httpRequest({ host: '127.0.0.1', port, path, method, agent: false, headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function connectStatus(proxyPort: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target, agent: false });
    req.on('connect', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

let dir: string;
let gateway: RunningGateway;
let upstream: Server;
let upstreamPort: number;
const lines: GatewayLine[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cb-decisions-'));
  upstream = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
  lines.length = 0;
  gateway = await startGateway(
    {
      identity: 'dev-s7a7s',
      proxy_port: 0,
      credential_port: 0,
      allow: [],
      // Pinned to loopback: the one way a test target passes the private-address policy.
      extra_hosts: { 'live.test': '127.0.0.1' },
    },
    {},
    { decisionsDir: dir, onDecision: (line) => lines.push(line), log: () => {} },
  );
});

afterEach(async () => {
  await gateway.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

async function ask(body: Record<string, unknown>): Promise<string> {
  const reply = await call(gateway.credentialPort, 'POST', '/_bottle/capability', JSON.stringify(body));
  expect(reply.status).toBe(202);
  const parsed = JSON.parse(reply.text) as { request_id: string; status_url: string };
  expect(parsed.status_url).toBe(`/_bottle/capability/${parsed.request_id}`);
  return parsed.request_id;
}

function decide(decision: DecisionFile): void {
  writeFileSync(join(dir, decisionFileName(decision.request_id)!), JSON.stringify(decision));
}

describe('capability status', () => {
  it('answers 404 for a request this gateway never issued', async () => {
    const reply = await call(gateway.credentialPort, 'GET', '/_bottle/capability/0b5e2c1e-0000-4000-8000-000000000000');
    expect(reply.status).toBe(404);
    expect(JSON.parse(reply.text)).toMatchObject({ error: 'unknown_capability_request' });
    expect((await call(gateway.credentialPort, 'GET', '/_bottle/capability/%E0%A4%A')).status).toBe(400);
    expect((await call(gateway.credentialPort, 'POST', '/_bottle/capability/x')).status).toBe(405);
  });

  it('is pending until decided; a denial carries the reason, made visible in the text form', async () => {
    const id = await ask({ kind: 'egress', host: 'live.test', port: upstreamPort, reason: 'fetch fixtures' });
    const pending = await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`);
    expect(JSON.parse(pending.text)).toEqual({
      request_id: id,
      status: 'pending',
      kind: 'egress',
      host: 'live.test',
      port: upstreamPort,
    });
    decide({ request_id: id, decision: 'denied', reason: 'use the mirror\u001b[2J', applies: null, allow: null });
    const denied = await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`);
    expect(JSON.parse(denied.text)).toMatchObject({ status: 'denied', reason: 'use the mirror\u001b[2J' });
    const text = await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`, undefined, 'text/plain');
    expect(text.text).toContain('status: denied\n');
    expect(text.text).toContain('reason: use the mirror\\x1b[2J\n');
    expect(lines).toContainEqual({ t: 'answered', request_id: id, decision: 'denied' });
  });

  it('answers a waiting status request once the decision is taken in, with the host allowed by then', async () => {
    const target = `live.test:${upstreamPort}`;
    expect(await connectStatus(gateway.proxyPort, target)).toBe(403);
    const id = await ask({ kind: 'egress', host: 'live.test', port: upstreamPort, reason: 'fetch fixtures' });
    const waiting = call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}?wait=30`);
    // The waiting request is held open: it has not been answered after the gateway served another one.
    let answered = false;
    void waiting.then(() => (answered = true));
    await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`);
    expect(answered).toBe(false);
    decide({ request_id: id, decision: 'approved', reason: null, applies: 'live', allow: target });
    gateway.reloadDecisions();
    const reply = await waiting;
    expect(JSON.parse(reply.text)).toMatchObject({ status: 'approved', applies: 'live', allowed: target });
    expect(await connectStatus(gateway.proxyPort, target)).toBe(200);
    // Taken in once, and the agent told once: a second reload and status request print nothing new.
    gateway.reloadDecisions();
    await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`);
    expect(lines.filter((line) => line.t === 'told')).toEqual([{ t: 'told', request_id: id }]);
    expect(lines.filter((line) => line.t === 'answered')).toEqual([
      { t: 'answered', request_id: id, decision: 'approved' },
    ]);
  });

  it('ignores a malformed decision file and takes it in once it is rewritten', async () => {
    const id = await ask({ kind: 'dockerfile', dockerfile: 'FROM debian:bookworm-slim', reason: 'jq' });
    writeFileSync(join(dir, `${id}.json`), '{"request_id":');
    gateway.reloadDecisions();
    const still = await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`);
    expect(JSON.parse(still.text)).toMatchObject({ status: 'pending', kind: 'dockerfile' });
    decide({ request_id: id, decision: 'approved', reason: null, applies: 'rebuild', allow: null });
    const approved = await call(gateway.credentialPort, 'GET', `/_bottle/capability/${id}`);
    expect(JSON.parse(approved.text)).toMatchObject({ status: 'approved', applies: 'rebuild' });
  });
});
