import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { installClientErrorHandler } from './client-errors.js';
import type { GatewayContext } from './context.js';
import { denialContext, forwardWithCredential } from './credential-proxy.js';
import { canonicalHost, type ProxyMode } from './egress-policy.js';
import { egressDeniedBody, rateLimitedBody, refuseRateLimited, sendJson, writeJsonAndClose } from './responses.js';
import { rawPathAndQuery } from './path-escape.js';
import { createInterceptionServer, interceptTunnel } from './tls-interception.js';
import type { EntryTreatment } from './egress-entries.js';
import { continueIfAsked, forwardInspected } from './inspected-forward.js';
import type { EgressDetail } from './protocol.js';
import type { DenialReason } from './protocol.js';
import { inspectTunnelStart, type TunnelKind } from './tunnel-inspection.js';
import {
  answerContinueOnAdmission,
  createPlainTunnelServer,
  HOP_BY_HOP_PROXY_HEADERS,
  hostHeaderUrl,
  safeUrl,
  servePlainTunnel,
} from './plain-tunnel.js';
import { refusedByHead } from './scanned-forward.js';

/**
 * The proxy port: what the agent's HTTP_PROXY / HTTPS_PROXY point at.
 * - `CONNECT host:port` opens a TCP tunnel (TLS inside it stays end to end),
 *   after the allowlist, the address policy and a check that the tunnel's
 *   first message names the CONNECT host (tunnel-inspection.ts). Plain HTTP
 *   inside a tunnel is served request by request, each Host header checked.
 *   The exceptions: port 443 of a host with a credential route, and every
 *   inspected allowlisted host (egress-entries.ts): the gateway terminates
 *   that TLS itself, to inject the secret or to read what is sent
 *   (tls-interception.ts). Tunnels to hosts not inspected are recorded so.
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
  proxy.on('proxyRes', ctx.traffic.response);
  const tunnels = new Set<Duplex>();
  const interceptionServer = createInterceptionServer(ctx, proxy);
  const plainTunnelServer = createPlainTunnelServer(ctx);
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
  answerContinueOnAdmission(server);
  installClientErrorHandler(ctx, server);
  return {
    server,
    destroyTunnels: () => {
      for (const socket of tunnels) socket.destroy();
    },
  };
}

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
  if (route) {
    // The raw text, not the parsed URL: WHATWG parsing resolves "..", which would hide it from the escape check.
    continueIfAsked(req, res);
    await forwardWithCredential(ctx, proxy, req, res, route, rawPathAndQuery(rawUrl));
    return;
  }
  const listed = ctx.policy.checkAllowlist(host, port, 'http');
  if (listed !== 'allowlisted') {
    ctx.decisions.denied({ host, port, method }, listed);
    sendJson(res, 403, egressDeniedBody(denialContext(ctx, req), host, port, listed));
    return;
  }
  const treatment = ctx.entries.lookup(host, port, 'http');
  await forwardInspected(ctx, req, res, {
    host,
    port,
    secure: false,
    // Rules read the raw text: WHATWG parsing resolves "..", "%2e" and "\\" and would hide an ambiguity.
    target: treatment?.rules ? rawPathAndQuery(rawUrl) : pathAndQuery,
    treatment,
    agentFor: (address, fresh) => ctx.upstreams.agent({ secure: false, host, port, address }, fresh),
  });
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
        interceptTunnel(ctx, servers.interceptionServer, clientSocket, verdict.buffered, { host, port, route });
        return;
      }
      const refusal = verdict.ok
        ? { reason: 'tunnel_unrecognized' as const, detail: `${verdict.kind} to a credential-route host` }
        : verdict;
      refuseTunnel(ctx, clientSocket, host, port, refusal);
    });
    return;
  }
  const listed = ctx.policy.checkAllowlist(host, port, 'connect');
  const treatment = listed === 'allowlisted' ? ctx.entries.lookup(host, port, 'connect') : undefined;
  if (treatment?.inspect && ctx.interception) {
    // Nothing is resolved or connected yet: each request inside is admitted on its own (inspected-forward.ts).
    clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    inspectTunnelStart(clientSocket, head, { host, port }, (verdict) => {
      if (!verdict.ok) refuseTunnel(ctx, clientSocket, host, port, verdict);
      else if (verdict.kind === 'tls')
        interceptTunnel(ctx, servers.interceptionServer, clientSocket, verdict.buffered, { host, port, treatment });
      else
        openLate(ctx, servers, req, clientSocket, verdict, { host, port, treatment }).catch((err: unknown) => {
          ctx.log(`proxy port: internal error on CONNECT: ${(err as Error).message}`);
          clientSocket.destroy();
        });
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
        servePlainTunnel(servers.plainTunnelServer, clientSocket, verdict.buffered, { host, port, address, treatment });
      } else {
        ctx.decisions.allowed({ host, port, method }, 'allowlisted', notInspected(ctx, treatment));
        ctx.traffic.tunnel(host, clientSocket, upstream, verdict.buffered.length);
        upstream.write(verdict.buffered);
        clientSocket.pipe(upstream);
        clientSocket.resume();
      }
    });
  });
}

/** What a decision on a tunnel the gateway does not read says, once the bottle inspects anything. */
function notInspected(ctx: GatewayContext, treatment: EntryTreatment | undefined): EgressDetail | undefined {
  if (!ctx.interception) return undefined;
  const rule = treatment ? `${treatment.entry} (inspect: false or an IP address)` : 'no entry (granted live)';
  return { class: 'not_inspected', rule, where: 'connect' };
}

/**
 * Plain HTTP or SSH in a tunnel to an inspected host: admitted (resolved)
 * only now, then served as any other tunnel of its kind.
 */
async function openLate(
  ctx: GatewayContext,
  servers: TunnelServers,
  req: IncomingMessage,
  clientSocket: Duplex,
  verdict: { kind: TunnelKind; buffered: Buffer },
  tunnel: { host: string; port: number; treatment: EntryTreatment },
): Promise<void> {
  const { host, port } = tunnel;
  const refuse = (status: number, body: Record<string, unknown>) => writeJsonAndClose(clientSocket, status, body);
  const address = await admit(ctx, host, port, 'CONNECT', 'connect', refuse, req);
  if (!address) return;
  if (verdict.kind === 'http') {
    servePlainTunnel(servers.plainTunnelServer, clientSocket, verdict.buffered, { ...tunnel, address });
    return;
  }
  const upstream = ctx.connect(address, port);
  upstream.on('error', () => clientSocket.destroy());
  upstream.on('close', () => clientSocket.destroy());
  clientSocket.on('close', () => upstream.destroy());
  ctx.decisions.allowed({ host, port, method: 'CONNECT' }, 'allowlisted', notInspected(ctx, undefined));
  upstream.write(verdict.buffered);
  upstream.pipe(clientSocket);
  clientSocket.pipe(upstream);
  clientSocket.resume();
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
