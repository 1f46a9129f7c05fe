import type { Agent, ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import type httpProxy from 'http-proxy';
import type { GatewayContext } from './context.js';
import type { EgressTarget } from './decision-log.js';
import { ScanBlockedError, type ScanFinding, type ScannedRequest } from './request-scanner.js';
import { inspectionDeniedBody, sendJson } from './responses.js';
import { bodyEncoding, decoderFor } from './scan/body-decoding.js';
import { resendable, watchForStaleSocket } from './stale-socket.js';

/**
 * Where a request the gateway forwards meets the scanner (request-scanner.ts): its head before any DNS
 * lookup or connection, its body as it streams to the upstream, and the response of a credential route
 * on its way back to the agent. Every path that forwards a request goes through here.
 */

/** Head check: a blocking finding is recorded and answered (true: stop); an audit one is recorded. */
export function refusedByHead(
  ctx: GatewayContext,
  scanned: ScannedRequest,
  refuse: (status: number, body: Record<string, unknown>) => void,
): boolean {
  const finding = ctx.scanner?.checkHead(scanned);
  if (!finding) return false;
  const target = targetOf(scanned);
  if (finding.action === 'audit') {
    ctx.decisions.audited(target, finding.reason, finding.detail);
    return false;
  }
  ctx.decisions.denied(target, finding.reason, finding.detail);
  refuse(403, inspectionDeniedBody(scanned.host, scanned.port, finding));
  return true;
}

const proxyRequestOf = new WeakMap<IncomingMessage, ClientRequest>();
const failedStaleOf = new WeakMap<IncomingMessage, (err: Error) => boolean>();
const responseHandlerOf = new WeakMap<IncomingMessage, (proxyRes: IncomingMessage) => void>();
const refusedBodies = new WeakSet<IncomingMessage>();
const wired = new WeakSet<httpProxy>();

/**
 * proxy.web, with the body scanned on its way up and, for credential routes, the response scrubbed.
 * A bodiless idempotent request that met a stale kept-alive socket is sent once more through
 * `freshAgent` (stale-socket.ts).
 */
export function forwardScanned(
  ctx: GatewayContext,
  proxy: httpProxy,
  req: IncomingMessage,
  res: ServerResponse,
  scanned: ScannedRequest,
  options: httpProxy.ServerOptions,
  onError: (err: Error) => void,
  freshAgent: () => Agent,
): void {
  wireProxy(proxy);
  const scanner = ctx.scanner;
  let sent: httpProxy.ServerOptions = options;
  if (scanner) {
    const target = targetOf(scanned);
    const body = scanner.requestBody(scanned, (f) => ctx.decisions.audited(target, f.reason, f.detail));
    body.on('error', (err: Error) => {
      if (!(err instanceof ScanBlockedError)) return;
      refusedBodies.add(req);
      ctx.decisions.denied(target, err.finding.reason, err.finding.detail);
      proxyRequestOf.get(req)?.destroy();
      if (!res.headersSent) {
        sendJson(res, 403, inspectionDeniedBody(scanned.host, scanned.port, err.finding), { connection: 'close' });
      } else res.destroy();
    });
    req.pipe(body);
    const scrubs = scanned.routeHost !== undefined;
    if (scrubs) {
      // An encoding the scrubber cannot read is not asked for; one sent anyway is decoded on the way back.
      req.headers['accept-encoding'] = 'identity';
      responseHandlerOf.set(req, (proxyRes) => scrubbedResponse(ctx, scanned, proxyRes, res));
    }
    sent = { ...options, buffer: body, selfHandleResponse: scrubs };
  }
  const mayResend = resendable(req.method, req.headers);
  const failed = (err: Error) => {
    if (refusedBodies.has(req)) return;
    if (!mayResend || !failedStaleOf.get(req)?.(err) || res.destroyed) return onError(err);
    ctx.log(`upstream ${scanned.host}:${scanned.port} closed a kept-alive connection as it was reused; sent again`);
    // The body was empty and is read already: the second try sends an empty one, on a new connection.
    proxy.web(req, res, { ...sent, agent: freshAgent(), buffer: Readable.from([]) }, onError);
  };
  proxy.web(req, res, sent, failed);
}

function wireProxy(proxy: httpProxy): void {
  if (wired.has(proxy)) return;
  wired.add(proxy);
  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    if (refusedBodies.has(req)) return proxyReq.destroy();
    proxyRequestOf.set(req, proxyReq);
    failedStaleOf.set(req, watchForStaleSocket(proxyReq));
  });
  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => responseHandlerOf.get(req)?.(proxyRes));
}

const NOT_FORWARDED_RESPONSE_HEADERS = ['connection', 'keep-alive', 'proxy-connection'];

function scrubbedResponse(
  ctx: GatewayContext,
  scanned: ScannedRequest,
  proxyRes: IncomingMessage,
  res: ServerResponse,
): void {
  const scanner = ctx.scanner!;
  const target = targetOf(scanned);
  const record = (finding: ScanFinding) => ctx.decisions.audited(target, finding.reason, finding.detail);
  const headers = { ...proxyRes.headers };
  for (const name of NOT_FORWARDED_RESPONSE_HEADERS) delete headers[name];
  const headerFinding = scanner.scrubResponseHeaders?.(scanned, headers);
  if (headerFinding) record(headerFinding);
  let source: Readable = proxyRes;
  const encoding = bodyEncoding(headers['content-encoding']);
  if (encoding !== 'identity') {
    if (encoding === undefined) {
      proxyRes.destroy();
      sendJson(res, 502, {
        error: 'upstream_response_unscannable',
        detail: 'the upstream answered in an unknown encoding',
      });
      return;
    }
    delete headers['content-encoding'];
    delete headers['content-length'];
    source = proxyRes.pipe(decoderFor(encoding));
  }
  res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, headers);
  let scrubbed = false;
  pipeline(
    source,
    scanner.responseBody(scanned, (finding) => {
      if (scrubbed) return;
      scrubbed = true;
      record(finding);
    }),
    res,
    () => undefined,
  );
}

function targetOf(scanned: ScannedRequest): EgressTarget {
  return { host: scanned.host, port: scanned.port, method: scanned.method };
}
