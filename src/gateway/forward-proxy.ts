import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { installClientErrorHandler } from './client-errors.js';
import type { GatewayContext } from './context.js';
import { denialContext, forwardWithCredential, upstreamFailed } from './credential-proxy.js';
import { canonicalHost, type ProxyMode } from './egress-policy.js';
import { egressDeniedBody, rateLimitedBody, refuseRateLimited, sendJson, writeJsonAndClose } from './responses.js';
import { rawPathAndQuery } from './path-escape.js';
import { createInterceptionServer, interceptTunnel } from './tls-interception.js';
import type { DenialReason } from './protocol.js';
import { inspectTunnelStart } from './tunnel-inspection.js';
import { forwardScanned, refusedByHead } from './scanned-forward.js';
import { connectorAgent, pinnedAgent } from './upstream-agent.js';

/**
 * The proxy port: what the agent's HTTP_PROXY / HTTPS_PROXY point at.
 * - `CONNECT host:port` opens a TCP tunnel (TLS inside it stays end to end),
 *   after the allowlist, the address policy and a check that the tunnel's
 *   first message names the CONNECT host (tunnel-inspection.ts). Plain HTTP
 *   inside a tunnel is served request by request, each Host header checked.
 *   The one exception is port 443 of a host with a credential route: the
 *   gateway terminates that TLS itself to inject the secret
 *   (tls-interception.ts).
 * - Absolute-form plain HTTP (`GET http://host/path`) is forwarded after the
 *   same checks. When the host has a credential route the request is instead
 *   sent over https to the route's upstream with the secret injected.
 */
export interface ForwardProxy {
  server: Server;
  /** Tunnels are detached from the HTTP server, so shutting down must end them separately. */
  destroyTunnels(): void;
}

export function createForwardProxy(ctx: GatewayContext): ForwardProxy {
  const proxy = httpProxy.createProxyServer({});
  proxy.on('error', () => {
    // Handled per request through the callback given to proxy.web.
  });
  const tunnels = new Set<Duplex>();
  const interceptionServer = createInterceptionServer(ctx, proxy);
  const plainTunnelServer = createPlainTunnelServer(ctx, proxy);
  const server = createServer({ maxHeaderSize: ctx.config.limits.max_header_bytes }, (req, res) => {
    handlePlainRequest(ctx, proxy, req, res).catch((err: unknown) => {
      ctx.log(`proxy port: internal error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'gateway_error' });
      else res.destroy();
    });
  });
  server.on('connect', (req: IncomingMessage, clientSocket: Duplex, head: Buffer) => {
    tunnels.add(clientSocket);
    clientSocket.on('close', () => tunnels.delete(clientSocket));
    clientSocket.on('error', () => clientSocket.destroy());
    handleConnect(ctx, { interceptionServer, plainTunnelServer }, req, clientSocket, head).catch((err: unknown) => {
      ctx.log(`proxy port: internal error on CONNECT: ${(err as Error).message}`);
      clientSocket.destroy();
    });
  });
  installClientErrorHandler(ctx, server);
  return {
    server,
    destroyTunnels: () => {
      for (const socket of tunnels) socket.destroy();
    },
  };
}

const HOP_BY_HOP_PROXY_HEADERS = ['proxy-authorization', 'proxy-connection'];

async function handlePlainRequest(
  ctx: GatewayContext,
  proxy: httpProxy,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const method = req.method ?? 'GET';
  const rawUrl = req.url ?? '';
  const url = rawUrl.startsWith('http://') ? safeUrl(rawUrl) : null;
  const host = url ? canonicalHost(url.hostname) : null;
  const port = url ? (url.port ? Number(url.port) : 80) : null;

  if (!ctx.limiter.tryTake()) {
    refuseRateLimited(ctx, res, { host, port, method });
    return;
  }
  if (!url || host === null || port === null) {
    ctx.decisions.denied({ host: null, port: null, method }, 'bad_request');
    sendJson(res, 400, {
      error: 'bad_request',
      detail: rawUrl.startsWith('/')
        ? 'this is the egress proxy port: send absolute-form requests (http://host/path) or CONNECT host:port'
        : 'only http:// URLs are proxied as plain requests; use CONNECT for https',
    });
    return;
  }
  if (!hostHeaderAgrees(req.headers.host, host, port)) {
    ctx.decisions.denied({ host, port, method }, 'bad_request');
    sendJson(res, 400, {
      error: 'host_header_mismatch',
      detail: 'the Host header must name the same host and port as the request URL',
    });
    return;
  }
  for (const name of HOP_BY_HOP_PROXY_HEADERS) delete req.headers[name];
  const pathAndQuery = `${url.pathname}${url.search}`;

  const route = port === 80 ? ctx.hostRoutes.get(host) : undefined;
  const scanned = { host, port, method, url: rawUrl, headers: req.headers };
  if (!route && refusedByHead(ctx, scanned, (status, body) => sendJson(res, status, body))) return;
  if (route) {
    // The raw text, not the parsed URL: WHATWG parsing resolves "..", which would hide it from the escape check.
    await forwardWithCredential(ctx, proxy, req, res, route, rawPathAndQuery(rawUrl));
    return;
  }
  const admitted = await admit(ctx, host, port, method, 'http', (status, body) => sendJson(res, status, body), req);
  if (!admitted) return;
  ctx.decisions.allowed({ host, port, method }, 'allowlisted');
  req.url = pathAndQuery;
  const options = { target: `http://${url.host}`, agent: pinnedAgent(admitted, false) };
  forwardScanned(ctx, proxy, req, res, scanned, options, (err) => upstreamFailed(ctx, res, host, port, err));
}

interface TunnelServers {
  interceptionServer: Server;
  plainTunnelServer: Server;
}

async function handleConnect(
  ctx: GatewayContext,
  servers: TunnelServers,
  req: IncomingMessage,
  clientSocket: Duplex,
  head: Buffer,
): Promise<void> {
  const method = 'CONNECT';
  const authority = parseAuthority(req.url ?? '');
  if (!ctx.limiter.tryTake()) {
    ctx.decisions.denied({ host: authority?.host ?? null, port: authority?.port ?? null, method }, 'rate_limited');
    writeJsonAndClose(clientSocket, 429, rateLimitedBody(ctx));
    return;
  }
  if (!authority) {
    ctx.decisions.denied({ host: null, port: null, method }, 'bad_request');
    writeJsonAndClose(clientSocket, 400, { error: 'bad_request', detail: 'CONNECT takes host:port' });
    return;
  }
  const { host, port } = authority;
  const connectHead = { host, port, method, url: req.url ?? '', headers: req.headers };
  if (refusedByHead(ctx, connectHead, (status, body) => writeJsonAndClose(clientSocket, status, body))) return;
  // Like plain-HTTP route requests, a route host needs no allowlist entry: the operator configured it.
  const route = port === 443 && ctx.interception ? ctx.hostRoutes.get(host) : undefined;
  if (route) {
    clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    inspectTunnelStart(clientSocket, head, { host, port }, (verdict) => {
      // The gateway itself terminates this TLS, so only TLS naming the route host is taken.
      if (verdict.ok && verdict.kind === 'tls') {
        interceptTunnel(ctx, servers.interceptionServer, clientSocket, verdict.buffered, host, route);
        return;
      }
      const refusal = verdict.ok
        ? { reason: 'tunnel_unrecognized' as const, detail: `${verdict.kind} to a credential-route host` }
        : verdict;
      refuseTunnel(ctx, clientSocket, host, port, refusal);
    });
    return;
  }
  const address = await admit(
    ctx,
    host,
    port,
    method,
    'connect',
    (status, body) => writeJsonAndClose(clientSocket, status, body),
    req,
  );
  if (!address) return;

  const upstream = ctx.connect(address, port);
  let established = false;
  const closeClient = () => clientSocket.destroy();
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    ctx.log(`tunnel to ${host}:${port} failed: ${err.code ?? err.message}`);
    if (!established) writeJsonAndClose(clientSocket, 502, { error: 'upstream_unreachable', host, port });
    else clientSocket.destroy();
  });
  clientSocket.on('close', () => upstream.destroy());
  upstream.on('close', closeClient);
  upstream.once('connect', () => {
    established = true;
    clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // Server-first protocols (SSH) may speak before the client does.
    upstream.pipe(clientSocket);
    inspectTunnelStart(clientSocket, head, { host, port }, (verdict) => {
      if (!verdict.ok) {
        upstream.destroy();
        refuseTunnel(ctx, clientSocket, host, port, verdict);
      } else if (verdict.kind === 'http') {
        // Served request by request, so every Host header is checked, not only the first.
        upstream.off('close', closeClient);
        upstream.unpipe(clientSocket);
        upstream.destroy();
        servePlainTunnel(servers.plainTunnelServer, clientSocket, verdict.buffered, { host, port, address });
      } else {
        ctx.decisions.allowed({ host, port, method }, 'allowlisted');
        upstream.write(verdict.buffered);
        clientSocket.pipe(upstream);
        clientSocket.resume();
      }
    });
  });
}

function refuseTunnel(
  ctx: GatewayContext,
  clientSocket: Duplex,
  host: string,
  port: number,
  refusal: { reason: DenialReason; detail: string },
): void {
  ctx.log(`tunnel to ${host}:${port} closed: ${refusal.detail}`);
  ctx.decisions.denied({ host, port, method: 'CONNECT' }, refusal.reason);
  clientSocket.destroy();
}

interface PlainTunnel {
  host: string;
  port: number;
  /** The address the CONNECT was admitted for; requests go only there. */
  address: string;
}

const plainTunnelOf = new WeakMap<Socket, PlainTunnel>();

/** Reads HTTP requests out of tunnels whose client speaks plain HTTP; it never listens on a port. */
function createPlainTunnelServer(ctx: GatewayContext, proxy: httpProxy): Server {
  const server = createServer({ maxHeaderSize: ctx.config.limits.max_header_bytes }, (req, res) => {
    try {
      handlePlainTunnelRequest(ctx, proxy, req, res);
    } catch (err) {
      ctx.log(`request in a tunnel: internal error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'gateway_error' });
      else res.destroy();
    }
  });
  installClientErrorHandler(ctx, server);
  return server;
}

function servePlainTunnel(server: Server, clientSocket: Duplex, buffered: Buffer, tunnel: PlainTunnel): void {
  plainTunnelOf.set(clientSocket as Socket, tunnel);
  if (buffered.length > 0) clientSocket.unshift(buffered);
  server.emit('connection', clientSocket);
  clientSocket.resume();
}

function handlePlainTunnelRequest(
  ctx: GatewayContext,
  proxy: httpProxy,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const tunnel = plainTunnelOf.get(req.socket);
  const method = req.method ?? 'GET';
  if (!tunnel) {
    sendJson(res, 500, { error: 'gateway_error' });
    return;
  }
  const { host, port, address } = tunnel;
  if (!ctx.limiter.tryTake()) {
    refuseRateLimited(ctx, res, { host, port, method });
    return;
  }
  const rawUrl = req.url ?? '';
  const targetNamesTunnel = rawUrl.startsWith('/') || authorityNames(safeUrl(rawUrl), host, port);
  if (!targetNamesTunnel || !authorityNames(hostHeaderUrl(req.headers.host), host, port)) {
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
  const scanned = { host, port, method, url: rawUrl, headers: req.headers };
  if (refusedByHead(ctx, scanned, (status, body) => sendJson(res, status, body, { connection: 'close' }))) return;
  ctx.decisions.allowed({ host, port, method }, 'allowlisted');
  req.url = rawPathAndQuery(rawUrl);
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const agent = connectorAgent(() => ctx.connect(address, port));
  const options = { target: `http://${authority}`, agent };
  forwardScanned(ctx, proxy, req, res, scanned, options, (err) => upstreamFailed(ctx, res, host, port, err));
}

/** A Host header as a URL, or null when it is absent or carries more than an authority. */
function hostHeaderUrl(header: string | undefined): URL | null {
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

/**
 * Allowlist, then resolution and the address policy. Answers the refusal
 * itself and returns null, or returns the vetted address to connect to.
 */
async function admit(
  ctx: GatewayContext,
  host: string,
  port: number,
  method: string,
  mode: ProxyMode,
  refuse: (status: number, body: Record<string, unknown>) => void,
  req: IncomingMessage,
): Promise<string | null> {
  const listed = ctx.policy.checkAllowlist(host, port, mode);
  if (listed !== 'allowlisted') {
    ctx.decisions.denied({ host, port, method }, listed);
    refuse(403, egressDeniedBody(denialContext(ctx, req), host, port, listed));
    return null;
  }
  const resolved = await ctx.policy.resolve(host);
  if (resolved.ok) return resolved.address;
  if (resolved.why === 'private_address') {
    ctx.log(`denied ${host}:${port}: resolves to ${resolved.category} address ${resolved.address}`);
    ctx.decisions.denied({ host, port, method }, 'private_address');
    refuse(403, egressDeniedBody(denialContext(ctx, req), host, port, 'private_address'));
  } else {
    ctx.log(`cannot resolve ${host}: ${resolved.detail}`);
    refuse(502, { error: 'upstream_unresolvable', host, port });
  }
  return null;
}

function safeUrl(raw: string): URL | null {
  try {
    const url = new URL(raw);
    return url.username || url.password ? null : url;
  } catch {
    return null;
  }
}

/** `host:port` (IPv6 in brackets). Anything with a path, credentials or no port is refused. */
export function parseAuthority(raw: string): { host: string; port: number } | null {
  if (!/^[^/@\s?#]+$/.test(raw)) return null;
  const url = safeUrl(`http://${raw}`);
  if (!url || !/:\d+$/.test(raw)) return null;
  // URL drops a port equal to the scheme default, so read it from the text.
  const port = Number(raw.slice(raw.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: canonicalHost(url.hostname), port };
}

/** A missing Host header is tolerated (HTTP/1.0); a present one must name the URL's host and port. */
export function hostHeaderAgrees(hostHeader: string | undefined, host: string, port: number): boolean {
  if (hostHeader === undefined) return true;
  // The same reading of a Host header as inside tunnels: an authority and nothing else.
  const parsed = hostHeaderUrl(hostHeader);
  if (!parsed) return false;
  const headerPort = parsed.port ? Number(parsed.port) : 80;
  return canonicalHost(parsed.hostname) === host && headerPort === port;
}
