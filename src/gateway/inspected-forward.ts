import {
  request as httpRequest,
  type Agent,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import type { GatewayContext } from './context.js';
import { denialContext, upstreamFailed } from './credential-proxy.js';
import { deferredRequest } from './deferred-request.js';
import type { EgressTarget } from './decision-log.js';
import type { EntryTreatment } from './egress-entries.js';
import { egressDeniedBody, inspectionDeniedBody, sendJson, writeJsonAndClose, type JsonBody } from './responses.js';
import { ScanBlockedError, type ScanFinding, type ScannedRequest } from './request-scanner.js';
import { frameGate } from './websocket-frames.js';
import { grantHint } from './grant-hint.js';
import { resendable, watchForStaleSocket } from './stale-socket.js';

/**
 * The one place a request the gateway reads is forwarded to an allowlisted
 * host that is not a credential route: plain HTTP (absolute-form or inside a
 * tunnel) and inspected HTTPS. In order, before any DNS lookup or upstream
 * connection: the entry's method and path rules (path-rules.ts), then the
 * scanner on the request head; then the name is resolved under the address
 * policy, and the body streams through the scanner to the upstream (opened
 * once the scan yields the body's first bytes or its end) while
 * the response streams back through it. WebSocket upgrades take the same
 * admission, then every frame the client sends is scanned before it is
 * passed on.
 */
export interface Exchange {
  host: string;
  port: number;
  /** https to the upstream (an inspected tunnel) or plain http. */
  secure: boolean;
  /** The origin-form target as the client sent it. */
  target: string;
  treatment: EntryTreatment | undefined;
  /** An address admitted already (a plain tunnel's); otherwise the host is resolved here. */
  address?: string;
  /**
   * The agent that connects to the vetted address: a pooled one (upstream-pool.ts), or with `fresh` one
   * that opens a new connection (a resent request, an upgrade).
   */
  agentFor(address: string, fresh: boolean): Agent;
}

/** `Expect: 100-continue` is answered only once the request is admitted, so a refused body is never sent. */
export function continueIfAsked(req: IncomingMessage, res: ServerResponse): void {
  if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue();
}

export async function forwardInspected(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  exchange: Exchange,
): Promise<void> {
  const { host, port } = exchange;
  const target: EgressTarget = { host, port, method: req.method ?? 'GET' };
  const admitted = await admitExchange(ctx, req, exchange, (status, body) => sendJson(res, status, body));
  if (!admitted) return;
  continueIfAsked(req, res);

  const scanner = ctx.scanner;
  const mayResend = resendable(req.method, req.headers);
  let current: ClientRequest | undefined;
  const send = (fresh: boolean): ClientRequest => {
    const request = (exchange.secure ? httpsRequest : httpRequest)({
      host,
      port,
      method: req.method,
      path: admitted.path,
      headers: forwardedHeaders(req.headers),
      agent: exchange.agentFor(admitted.address, fresh),
    });
    current = request;
    const failedStale = watchForStaleSocket(request);
    request.on('error', (err: Error) => {
      if (!fresh && mayResend && failedStale(err) && !res.destroyed) {
        ctx.log(`upstream ${host}:${port} closed a kept-alive connection as it was reused; sent again on a new one`);
        send(true).end();
        return;
      }
      upstreamFailed(ctx, res, host, port, err);
    });
    request.on('response', (answer: IncomingMessage) => {
      ctx.traffic.response(answer, req);
      const headers = responseHeaders(answer.headers);
      let out: Readable = answer;
      if (scanner) {
        // A replaced secret may change the length: the body goes chunked.
        delete headers['content-length'];
        out = answer.pipe(
          scanner.responseBody(admitted.scanned, (f) => ctx.decisions.audited(target, f.reason, f.detail)),
        );
        out.on('error', () => res.destroy());
      }
      res.writeHead(answer.statusCode ?? 502, headers);
      out.pipe(res);
    });
    return request;
  };
  const upstream = deferredRequest(() => send(false));
  ctx.traffic.exchange(host, req);
  let body: Readable = req;
  if (scanner) {
    body = req.pipe(scanner.requestBody(admitted.scanned, (f) => ctx.decisions.audited(target, f.reason, f.detail)));
    body.on('error', (err: Error) => {
      upstream.destroy();
      if (!(err instanceof ScanBlockedError)) return res.destroy();
      ctx.decisions.denied(target, err.finding.reason, err.finding.detail);
      if (!res.headersSent) sendJson(res, 403, findingBody(exchange, err.finding), { connection: 'close' });
      else res.destroy();
    });
  }
  body.pipe(upstream);
  res.on('close', () => {
    if (res.writableFinished) return;
    upstream.destroy();
    current?.destroy();
  });
}

/** A WebSocket (or other) upgrade through the same admission; the client's frames are scanned on the way up. */
export async function forwardInspectedUpgrade(
  ctx: GatewayContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  exchange: Exchange,
): Promise<void> {
  const { host, port } = exchange;
  const target: EgressTarget = { host, port, method: req.method ?? 'GET' };
  if (!/^websocket$/i.test(req.headers.upgrade ?? '')) {
    ctx.decisions.denied(target, 'bad_request');
    writeJsonAndClose(socket, 400, { error: 'bad_request', detail: 'only WebSocket upgrades are forwarded' });
    return;
  }
  const admitted = await admitExchange(ctx, req, exchange, (status, body) => writeJsonAndClose(socket, status, body));
  if (!admitted) return;
  const headers: OutgoingHttpHeaders = {
    ...forwardedHeaders(req.headers),
    connection: 'Upgrade',
    upgrade: 'websocket',
  };
  // Compressed frames could not be read, so no compression is negotiated while a scanner looks.
  if (ctx.scanner) delete headers['sec-websocket-extensions'];
  const upstream = (exchange.secure ? httpsRequest : httpRequest)({
    host,
    port,
    method: req.method,
    path: admitted.path,
    headers,
    // An upgraded connection leaves the pool for good and an upgrade is never sent twice: it starts on a new one.
    agent: exchange.agentFor(admitted.address, true),
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    ctx.log(`upgrade to ${host}:${port} failed: ${err.code ?? err.message}`);
    writeJsonAndClose(socket, 502, { error: 'upstream_unreachable', host, port });
  });
  upstream.on('response', (answer: IncomingMessage) => {
    // The upstream declined the upgrade: its answer goes back as it is, and the connection ends.
    socket.write(statusLine(answer) + rawHeaderLines(answer.rawHeaders) + '\r\n');
    answer.pipe(socket);
  });
  upstream.on('upgrade', (answer: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
    socket.write(statusLine(answer) + rawHeaderLines(answer.rawHeaders) + '\r\n');
    if (upHead.length > 0) socket.write(upHead);
    ctx.traffic.tunnel(host, socket, upSocket, head.length);
    upSocket.pipe(socket);
    const scanner = ctx.scanner;
    const gate = frameGate((payload, startsMessage) => {
      const finding = scanner?.checkFrame(admitted.scanned, payload, startsMessage);
      if (finding?.action === 'audit') ctx.decisions.audited(target, finding.reason, finding.detail);
      if (finding?.action === 'block') throw new ScanBlockedError(finding);
    });
    gate.on('error', (err: Error) => {
      if (err instanceof ScanBlockedError) ctx.decisions.denied(target, err.finding.reason, err.finding.detail);
      else ctx.log(`WebSocket to ${host}:${port} closed: ${err.message}`);
      upSocket.destroy();
      socket.destroy();
    });
    if (head.length > 0) gate.write(head);
    socket.pipe(gate).pipe(upSocket);
    const closeBoth = () => {
      upSocket.destroy();
      socket.destroy();
    };
    socket.on('close', closeBoth);
    upSocket.on('close', closeBoth);
    socket.on('error', closeBoth);
    upSocket.on('error', closeBoth);
  });
  upstream.end();
}

interface Admitted {
  address: string;
  /** The target to send: canonical when the entry rules paths. */
  path: string;
  scanned: ScannedRequest;
}

/** Rules, then the head scan, then resolution under the address policy; refuses itself and returns null. */
async function admitExchange(
  ctx: GatewayContext,
  req: IncomingMessage,
  exchange: Exchange,
  refuse: (status: number, body: JsonBody) => void,
): Promise<Admitted | null> {
  const { host, port } = exchange;
  const method = req.method ?? 'GET';
  const target: EgressTarget = { host, port, method };
  const rules = exchange.treatment?.rules;
  const verdict = rules ? rules.check(method, exchange.target) : { ok: true as const, target: exchange.target };
  if (!verdict.ok) {
    ctx.decisions.denied(target, verdict.reason, verdict.detail);
    const ask = grantHint(verdict, { host, port, method, target: exchange.target });
    refuse(403, {
      error: 'egress_denied',
      host,
      port,
      method,
      reason: verdict.reason,
      detail: verdict.detail,
      why: verdict.why,
      ...(ask ? { ask } : {}),
    });
    return null;
  }
  const scanned: ScannedRequest = { host, port, method, url: verdict.target, headers: req.headers };
  const finding = ctx.scanner?.checkHead(scanned);
  if (finding?.action === 'block') {
    ctx.decisions.denied(target, finding.reason, finding.detail);
    refuse(403, findingBody(exchange, finding));
    return null;
  }
  if (finding) ctx.decisions.audited(target, finding.reason, finding.detail);

  let address = exchange.address;
  if (address === undefined) {
    const resolved = await ctx.policy.resolve(host);
    if (!resolved.ok) {
      if (resolved.why === 'private_address') {
        ctx.log(`denied ${host}:${port}: resolves to ${resolved.category} address ${resolved.address}`);
        ctx.decisions.denied(target, 'private_address');
        refuse(403, egressDeniedBody(denialContext(ctx, req), host, port, 'private_address'));
      } else {
        ctx.log(`cannot resolve ${host}: ${resolved.detail}`);
        refuse(502, { error: 'upstream_unresolvable', host, port });
      }
      return null;
    }
    address = resolved.address;
  }
  ctx.decisions.allowed(target, 'allowlisted');
  return { address, path: verdict.target, scanned };
}

/** One refusal shape whichever path found it (scanned-forward.ts answers the same way). */
function findingBody(exchange: Exchange, finding: ScanFinding): JsonBody {
  return inspectionDeniedBody(exchange.host, exchange.port, finding);
}

/** Hop-by-hop headers (RFC 9110 7.6.1) and those the Connection header names stay on this hop. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Answered here (continueIfAsked) once the request is admitted.
  'expect',
]);

function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = (headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return withoutHopByHop(headers);
}

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return withoutHopByHop(headers);
}

function statusLine(answer: IncomingMessage): string {
  return `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\n`;
}

function rawHeaderLines(raw: string[]): string {
  let text = '';
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return text;
}
