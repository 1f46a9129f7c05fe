import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { installClientErrorHandler } from './client-errors.js';
import type { GatewayContext } from './context.js';
import type { EntryTreatment } from './egress-entries.js';
import { canonicalHost } from './egress-policy.js';
import { forwardInspected, forwardInspectedUpgrade, type Exchange } from './inspected-forward.js';
import { rawPathAndQuery } from './path-escape.js';
import { refuseRateLimited, sendJson, writeJsonAndClose } from './responses.js';
import { connectorAgent } from './upstream-agent.js';

/**
 * Tunnels whose client speaks plain HTTP: the gateway reads them request by
 * request, so every request's target and Host header must name the tunnel's
 * host (no second host behind an allowlisted address), and each goes through
 * inspected-forward.ts like any plain-HTTP request.
 */
export const HOP_BY_HOP_PROXY_HEADERS = ['proxy-authorization', 'proxy-connection'];

export interface PlainTunnel {
  host: string;
  port: number;
  /** The address the CONNECT was admitted for; requests go only there. */
  address: string;
  treatment: EntryTreatment | undefined;
}

const plainTunnelOf = new WeakMap<Socket, PlainTunnel>();

/** Reads HTTP requests out of tunnels whose client speaks plain HTTP; it never listens on a port. */
export function createPlainTunnelServer(ctx: GatewayContext): Server {
  const server = createServer({ maxHeaderSize: ctx.config.limits.max_header_bytes }, (req, res) => {
    handlePlainTunnelRequest(ctx, req, res).catch((err: unknown) => {
      ctx.log(`request in a tunnel: internal error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'gateway_error' });
      else res.destroy();
    });
  });
  answerContinueOnAdmission(server);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tunnel = plainTunnelOf.get(req.socket);
    const rawUrl = req.url ?? '';
    if (!tunnel || !namesTunnel(req, tunnel) || !ctx.limiter.tryTake()) {
      ctx.decisions.denied(
        { host: tunnel?.host ?? null, port: tunnel?.port ?? null, method: req.method ?? null },
        'bad_request',
      );
      writeJsonAndClose(socket, 400, { error: 'bad_request', detail: 'the upgrade must name the tunnel host' });
      return;
    }
    forwardInspectedUpgrade(ctx, req, socket, head, plainTunnelExchange(ctx, tunnel, rawUrl)).catch((err: unknown) => {
      ctx.log(`upgrade in a tunnel: internal error: ${(err as Error).message}`);
      socket.destroy();
    });
  });
  installClientErrorHandler(ctx, server);
  return server;
}

/** `Expect: 100-continue` is answered where the request is admitted (inspected-forward.ts continueIfAsked). */
export function answerContinueOnAdmission(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
}

/** The request target and Host header name the tunnel's host (and port). */
function namesTunnel(req: IncomingMessage, tunnel: PlainTunnel): boolean {
  const rawUrl = req.url ?? '';
  const targetNamesTunnel = rawUrl.startsWith('/') || authorityNames(safeUrl(rawUrl), tunnel.host, tunnel.port);
  return targetNamesTunnel && authorityNames(hostHeaderUrl(req.headers.host), tunnel.host, tunnel.port);
}

export function servePlainTunnel(server: Server, clientSocket: Duplex, buffered: Buffer, tunnel: PlainTunnel): void {
  plainTunnelOf.set(clientSocket as Socket, tunnel);
  if (buffered.length > 0) clientSocket.unshift(buffered);
  server.emit('connection', clientSocket);
  clientSocket.resume();
}

async function handlePlainTunnelRequest(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const tunnel = plainTunnelOf.get(req.socket);
  const method = req.method ?? 'GET';
  if (!tunnel) {
    sendJson(res, 500, { error: 'gateway_error' });
    return;
  }
  const { host, port } = tunnel;
  if (!ctx.limiter.tryTake()) {
    refuseRateLimited(ctx, res, { host, port, method });
    return;
  }
  const rawUrl = req.url ?? '';
  if (!namesTunnel(req, tunnel)) {
    ctx.log(`request in the tunnel to ${host}:${port} refused: it names another host`);
    ctx.decisions.denied({ host, port, method }, 'tunnel_host_mismatch');
    sendJson(
      res,
      403,
      {
        error: 'tunnel_host_mismatch',
        host,
        port,
        detail: 'a request inside a tunnel must name the tunnel host in its Host header',
      },
      { connection: 'close' },
    );
    return;
  }
  for (const name of HOP_BY_HOP_PROXY_HEADERS) delete req.headers[name];
  await forwardInspected(ctx, req, res, plainTunnelExchange(ctx, tunnel, rawUrl));
}

function plainTunnelExchange(ctx: GatewayContext, tunnel: PlainTunnel, rawUrl: string): Exchange {
  const { host, port, address, treatment } = tunnel;
  return {
    host,
    port,
    secure: false,
    target: rawPathAndQuery(rawUrl),
    treatment,
    address,
    agentFor: () => connectorAgent(() => ctx.connect(address, port)),
  };
}

/** A Host header as a URL, or null when it is absent or carries more than an authority. */
export function hostHeaderUrl(header: string | undefined): URL | null {
  if (header === undefined) return null;
  const url = safeUrl(`http://${header}`);
  return url && url.pathname === '/' && !url.search && !url.hash && !/[/?#]/.test(header) ? url : null;
}

/** A Host header or absolute URL naming the tunnel's host; a port, when given, must be the tunnel's. */
function authorityNames(url: URL | null, host: string, port: number): boolean {
  if (!url || url.protocol !== 'http:') return false;
  if (url.username || url.password) return false;
  if (canonicalHost(url.hostname) !== host) return false;
  return url.port === '' || Number(url.port) === port;
}

export function safeUrl(raw: string): URL | null {
  try {
    const url = new URL(raw);
    return url.username || url.password ? null : url;
  } catch {
    return null;
  }
}
