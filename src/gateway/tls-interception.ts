import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type httpProxy from 'http-proxy';
import type { GatewayRoute } from './config.js';
import type { GatewayContext } from './context.js';
import { forwardWithCredential } from './credential-proxy.js';
import type { EntryTreatment } from './egress-entries.js';
import { canonicalHost } from './egress-policy.js';
import { continueIfAsked, forwardInspected, forwardInspectedUpgrade, type Exchange } from './inspected-forward.js';
import { refuseRateLimited, sendJson, writeJsonAndClose } from './responses.js';

/**
 * HTTPS the gateway reads: the CONNECT tunnel is answered by the gateway
 * itself, which terminates TLS with a certificate from its per-run
 * interception CA (interception-ca.ts) and reads each request. To a
 * credential-route host it goes to the route's upstream with the real secret
 * — so `curl https://api.github.com` through HTTPS_PROXY works with a token
 * the agent never holds; to an inspected allowlisted host it goes through
 * inspected-forward.ts (rules, scanning) over a TLS connection of its own
 * that verifies the real upstream (kept alive only for requests admitted to
 * the same destination: upstream-pool.ts). Hosts not inspected are never opened here
 * (forward-proxy.ts keeps them end to end).
 */
export type InterceptedTunnel =
  { host: string; port: number; route: GatewayRoute } | { host: string; port: number; treatment: EntryTreatment };

const tunnelOf = new WeakMap<Socket, InterceptedTunnel>();

/** The HTTP server that reads requests out of intercepted tunnels; it never listens on a port. */
export function createInterceptionServer(ctx: GatewayContext, proxy: httpProxy): Server {
  const server = createServer({ maxHeaderSize: ctx.config.limits.max_header_bytes }, (req, res) => {
    handleInterceptedRequest(ctx, proxy, req, res).catch((err: unknown) => {
      ctx.log(`intercepted request: internal error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'gateway_error' });
      else res.destroy();
    });
  });
  // Answered once the request is admitted (inspected-forward.ts), so a refused body is never sent.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const tunnel = tunnelOf.get(socket as Socket);
    if (err.code === 'HPE_HEADER_OVERFLOW')
      ctx.decisions.denied({ host: tunnel?.host ?? null, port: tunnel?.port ?? 443, method: null }, 'header_too_large');
    socket.destroy();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tunnel = tunnelOf.get(req.socket);
    const named = tunnel && hostHeaderNames(req.headers.host, tunnel.host, tunnel.port);
    if (!tunnel || 'route' in tunnel || !named || !req.url?.startsWith('/') || !ctx.limiter.tryTake()) {
      ctx.decisions.denied(
        { host: tunnel?.host ?? null, port: tunnel?.port ?? 443, method: req.method ?? null },
        'bad_request',
      );
      writeJsonAndClose(socket, 400, {
        error: 'bad_request',
        detail: 'upgrades are forwarded to inspected hosts only',
      });
      return;
    }
    forwardInspectedUpgrade(ctx, req, socket, head, inspectedExchange(ctx, tunnel, req.url)).catch((err: unknown) => {
      ctx.log(`intercepted upgrade: internal error: ${(err as Error).message}`);
      socket.destroy();
    });
  });
  return server;
}

/**
 * Starts TLS on the agent's side of an answered CONNECT. `head` is what the
 * client already sent (its ClientHello, judged by tunnel-inspection.ts).
 */
export function interceptTunnel(
  ctx: GatewayContext,
  server: Server,
  clientSocket: Duplex,
  head: Buffer,
  tunnel: InterceptedTunnel,
): void {
  const { host, port } = tunnel;
  const interception = ctx.interception!;
  if (head.length > 0) clientSocket.unshift(head);
  let sniRefused = false;
  const tls = new TLSSocket(clientSocket, {
    isServer: true,
    ALPNProtocols: ['http/1.1'],
    secureContext: interception.contextFor(host),
    // The name inside TLS must be the CONNECT host, as for any tunnel (no fronting).
    SNICallback: (servername, done) => {
      if (canonicalHost(servername) !== host) {
        sniRefused = true;
        ctx.log(
          `intercepted tunnel to ${host} closed: TLS server name ${JSON.stringify(servername)} is not the CONNECT host`,
        );
        ctx.decisions.denied({ host, port, method: 'CONNECT' }, 'tls_sni_mismatch');
        done(new Error('server name mismatch'), undefined);
        return;
      }
      done(null, interception.contextFor(host));
    },
  });
  tunnelOf.set(tls, tunnel);
  tls.on('error', (err: Error) => {
    // An agent that does not trust the CA ends the handshake itself; nothing was forwarded.
    if (!sniRefused) ctx.log(`intercepted tunnel to ${host}: ${err.message}`);
    tls.destroy();
    clientSocket.destroy();
  });
  tls.on('close', () => clientSocket.destroy());
  server.emit('connection', tls);
}

async function handleInterceptedRequest(
  ctx: GatewayContext,
  proxy: httpProxy,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const tunnel = tunnelOf.get(req.socket);
  const method = req.method ?? 'GET';
  if (!tunnel) {
    sendJson(res, 500, { error: 'gateway_error' });
    return;
  }
  const { host, port } = tunnel;
  const rawUrl = req.url ?? '';
  if (!ctx.limiter.tryTake()) {
    refuseRateLimited(ctx, res, { host, port, method });
    return;
  }
  if (!rawUrl.startsWith('/')) {
    ctx.decisions.denied({ host, port, method }, 'bad_request');
    sendJson(res, 400, {
      error: 'bad_request',
      detail: 'inside a tunnel, requests take origin-form paths, e.g. /user',
    });
    return;
  }
  if (!hostHeaderNames(req.headers.host, host, port)) {
    ctx.decisions.denied({ host, port, method }, 'bad_request');
    sendJson(res, 400, {
      error: 'host_header_mismatch',
      detail: 'the Host header must name the host the tunnel was opened for',
    });
    return;
  }
  if ('treatment' in tunnel) {
    await forwardInspected(ctx, req, res, inspectedExchange(ctx, tunnel, rawUrl));
    return;
  }
  continueIfAsked(req, res);
  // The path-escape and method checks happen in forwardWithCredential, as for every other way in.
  await forwardWithCredential(ctx, proxy, req, res, tunnel.route, rawUrl);
}

function inspectedExchange(
  ctx: GatewayContext,
  tunnel: { host: string; port: number; treatment: EntryTreatment },
  target: string,
): Exchange {
  const { host, port } = tunnel;
  return {
    host,
    port,
    secure: true,
    target,
    treatment: tunnel.treatment,
    agentFor: (address, fresh) =>
      ctx.upstreams.agent(
        { secure: true, host, port, address, ...(ctx.upstreamCa ? { ca: ctx.upstreamCa } : {}) },
        fresh,
      ),
  };
}

/** HTTP/1.1 requires Host; it must be the tunnel's host (with the tunnel's port, or none when that is 443). */
function hostHeaderNames(header: string | undefined, host: string, port: number): boolean {
  if (!header) return false;
  const match = /^(.+?)(?::(\d+))?$/.exec(header.trim());
  if (!match) return false;
  return canonicalHost(match[1]) === host && (match[2] === undefined ? port === 443 : Number(match[2]) === port);
}
