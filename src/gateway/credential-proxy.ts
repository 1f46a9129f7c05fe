import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import httpProxy from 'http-proxy';
import { CAPABILITY_PATH, handleCapabilityRequest, handleCapabilityStatus } from './capability-routes.js';
import type { GatewayRoute } from './config.js';
import type { GatewayContext } from './context.js';
import { canonicalHost } from './egress-policy.js';
import { installClientErrorHandler } from './client-errors.js';
import { credentialRequestRefusal } from './path-escape.js';
import {
  capabilityUrlFor,
  egressDeniedBody,
  refuseCredentialRequest,
  refuseRateLimited,
  sendJson,
} from './responses.js';
import { isMessagesCall, refuseBudgetSpent } from './budget-refusal.js';
import { tapUsage } from './usage-reader.js';
import { handleStatusReport, STATUS_PATH } from './status-routes.js';
import { forwardScanned, refusedByHead } from './scanned-forward.js';

/**
 * The credential port: a reverse proxy that adds the real secret, which the
 * agent never holds. Shapes served:
 *
 * - `POST /_bottle/capability` — a capability request (see capability-routes.ts);
 * - `GET /_bottle/capability/<id>` — that request's status;
 * - `POST /_bottle/status` — the agent needs the operator, or works again (see status-routes.ts);
 * - `/_host/<host>/<path>` — forwarded to `<route upstream or https://<host>>/<path>`
 *   for the host route of `<host>`, with that route's secret injected;
 * - any other path — forwarded to the anthropic-base-url route's upstream
 *   (upstream path prefix + request path), so `ANTHROPIC_BASE_URL` can point
 *   straight at this port.
 *
 * The agent's own placeholder credentials are stripped before the real one is
 * added. Route upstreams need no allowlist entry (the operator configured
 * them), but still pass the private-address policy.
 */
export const HOST_ROUTE_PREFIX = '/_host/';

/** Headers an agent might use to smuggle its placeholder (or anything else) as a credential. */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'proxy-authorization', 'proxy-connection'];

export function createCredentialServer(ctx: GatewayContext): Server {
  const proxy = httpProxy.createProxyServer({});
  proxy.on('error', () => {
    // Handled per request through the callback given to proxy.web.
  });
  proxy.on('proxyRes', ctx.traffic.response);
  const metered = new WeakSet<IncomingMessage>();
  proxy.on('proxyRes', (upstream: IncomingMessage, req: IncomingMessage) => {
    const status = upstream.statusCode ?? 0;
    if (ctx.usage && metered.has(req) && status >= 200 && status < 300) {
      tapUsage(upstream, (usage) => ctx.usage?.record(usage));
    }
  });
  const server = createServer({ maxHeaderSize: ctx.config.limits.max_header_bytes }, (req, res) => {
    handleCredentialRequest(ctx, proxy, req, res, metered).catch((err: unknown) => {
      ctx.log(`credential port: internal error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'gateway_error' });
      else res.destroy();
    });
  });
  installClientErrorHandler(ctx, server);
  return server;
}

async function handleCredentialRequest(
  ctx: GatewayContext,
  proxy: httpProxy,
  req: IncomingMessage,
  res: ServerResponse,
  metered: WeakSet<IncomingMessage>,
): Promise<void> {
  const rawUrl = req.url ?? '';
  const method = req.method ?? 'GET';
  const pathOnly = rawUrl.split('?')[0];
  const hostRoute = parseHostRoutePath(rawUrl);
  const target = describeTarget(ctx, hostRoute);

  // Hooks report on every tool call: they have a budget of their own and never spend the agent's requests'.
  if (pathOnly === STATUS_PATH) {
    await handleStatusReport(ctx.statusReports, req, res);
    return;
  }
  if (!ctx.limiter.tryTake()) {
    refuseRateLimited(ctx, res, { ...target, method });
    return;
  }
  if (!rawUrl.startsWith('/')) {
    ctx.decisions.denied({ ...target, method }, 'bad_request');
    sendJson(res, 400, {
      error: 'bad_request',
      detail: 'the credential port takes origin-form paths, e.g. /v1/messages',
    });
    return;
  }
  const refusal = credentialRequestRefusal(method, rawUrl);
  if (refusal) {
    refuseCredentialRequest(ctx, res, { ...target, method }, refusal);
    return;
  }
  if (pathOnly === CAPABILITY_PATH) {
    await handleCapabilityRequest(ctx, req, res);
    return;
  }
  if (pathOnly.startsWith(`${CAPABILITY_PATH}/`)) {
    await handleCapabilityStatus(ctx, req, res, pathOnly.slice(CAPABILITY_PATH.length + 1));
    return;
  }
  if (hostRoute) {
    const route = ctx.hostRoutes.get(hostRoute.host);
    if (!route) {
      ctx.decisions.denied({ host: hostRoute.host, port: null, method }, 'bad_request');
      sendJson(res, 404, {
        error: 'no_credential_route',
        host: hostRoute.host,
        detail: 'no credential route is configured for this host',
      });
      return;
    }
    await forwardWithCredential(ctx, proxy, req, res, route, hostRoute.rest);
    return;
  }
  if (!ctx.anthropicRoute) {
    ctx.decisions.denied({ host: null, port: null, method }, 'bad_request');
    sendJson(res, 404, {
      error: 'no_credential_route',
      detail: `no anthropic-base-url route; host routes are served under ${HOST_ROUTE_PREFIX}<host>/`,
    });
    return;
  }
  if (ctx.usage && isMessagesCall(method, pathOnly)) {
    if (ctx.usage.exhausted()) {
      refuseBudgetSpent(ctx, res, { ...target, method });
      return;
    }
    metered.add(req);
  }
  await forwardWithCredential(ctx, proxy, req, res, ctx.anthropicRoute, rawUrl);
}

function parseHostRoutePath(rawUrl: string): { host: string; rest: string } | null {
  if (!rawUrl.startsWith(HOST_ROUTE_PREFIX)) return null;
  const afterPrefix = rawUrl.slice(HOST_ROUTE_PREFIX.length);
  const end = afterPrefix.search(/[/?]/);
  const host = canonicalHost(end < 0 ? afterPrefix : afterPrefix.slice(0, end));
  const rest = end < 0 ? '/' : afterPrefix.slice(end);
  return { host, rest: rest.startsWith('?') ? `/${rest}` : rest };
}

function describeTarget(
  ctx: GatewayContext,
  hostRoute: { host: string } | null,
): { host: string | null; port: number | null } {
  const route = hostRoute ? ctx.hostRoutes.get(hostRoute.host) : ctx.anthropicRoute;
  if (!route) return { host: hostRoute?.host ?? null, port: null };
  const url = routeUpstream(route);
  return { host: canonicalHost(url.hostname), port: portOf(url) };
}

export function routeUpstream(route: GatewayRoute): URL {
  return new URL(route.upstream ?? `https://${route.host}`);
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** The real credential in the header shape the route's auth names. */
export function credentialHeader(route: GatewayRoute, secret: string): [string, string] {
  switch (route.auth) {
    case 'oauth':
    case 'bearer':
      return ['authorization', `Bearer ${secret}`];
    case 'api-key':
      return ['x-api-key', secret];
    case 'basic':
      return ['authorization', `Basic ${Buffer.from(secret, 'utf8').toString('base64')}`];
    case 'header':
      return [route.header!.toLowerCase(), secret];
  }
}

/**
 * Sends one request to a route's upstream with the secret injected.
 * `pathAndQuery` is appended to the upstream's own path; it must be the raw
 * text the client sent (see rawPathAndQuery), because the escape check runs
 * here, for every way in. Responses, including server-sent event streams,
 * are piped through as they arrive.
 */
export async function forwardWithCredential(
  ctx: GatewayContext,
  proxy: httpProxy,
  req: IncomingMessage,
  res: ServerResponse,
  route: GatewayRoute,
  pathAndQuery: string,
): Promise<void> {
  const upstream = routeUpstream(route);
  const host = canonicalHost(upstream.hostname);
  const port = portOf(upstream);
  const method = req.method ?? 'GET';
  const refusal = credentialRequestRefusal(method, pathAndQuery);
  if (refusal) {
    refuseCredentialRequest(ctx, res, { host, port, method }, refusal);
    return;
  }
  const toModel = route.role === 'anthropic-base-url';
  const scanned = { host, port, method, url: pathAndQuery, headers: req.headers, routeHost: host, toModel };
  if (refusedByHead(ctx, scanned, (status, body) => sendJson(res, status, body))) return;
  const resolved = await ctx.policy.resolve(host);
  if (!resolved.ok) {
    if (resolved.why === 'private_address') {
      ctx.log(`denied ${host}:${port}: resolves to ${resolved.category} address ${resolved.address}`);
      ctx.decisions.denied({ host, port, method }, 'private_address');
      sendJson(res, 403, egressDeniedBody(denialContext(ctx, req), host, port, 'private_address'));
    } else {
      ctx.log(`cannot resolve route upstream ${host}: ${resolved.detail}`);
      sendJson(res, 502, { error: 'upstream_unresolvable', host });
    }
    return;
  }

  for (const name of CREDENTIAL_HEADERS) delete req.headers[name];
  dropConnectionHeaders(req.headers);
  const [headerName, headerValue] = credentialHeader(route, ctx.secrets[route.id]);
  delete req.headers[headerName];
  req.headers[headerName] = headerValue;
  req.url = pathAndQuery;

  ctx.decisions.allowed({ host, port, method }, 'credential_route');
  ctx.traffic.exchange(host, req);
  const key = { secure: upstream.protocol === 'https:', host, port, address: resolved.address, route: route.id };
  const options = { target: upstream.href, changeOrigin: true, agent: ctx.upstreams.agent(key) };
  const onError = (err: Error) => upstreamFailed(ctx, res, host, port, err);
  forwardScanned(ctx, proxy, req, res, scanned, options, onError, () => ctx.upstreams.agent(key, true));
}

/**
 * The client's Connection header (and what it names) concerns its own hop. Forwarded, a `close` would
 * be sent on a pooled upstream socket that Node still hands to the next request, while the server
 * closes it after answering.
 */
function dropConnectionHeaders(headers: IncomingHttpHeaders): void {
  const named = (headers.connection ?? '').split(',').map((name) => name.trim().toLowerCase());
  for (const name of [...named, 'connection', 'keep-alive']) if (name) delete headers[name];
}

export function upstreamFailed(ctx: GatewayContext, res: ServerResponse, host: string, port: number, err: Error): void {
  ctx.log(`upstream ${host}:${port} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
  if (!res.headersSent) sendJson(res, 502, { error: 'upstream_unreachable', host, port });
  else res.destroy();
}

export function denialContext(ctx: GatewayContext, req: IncomingMessage): { identity: string; capabilityUrl: string } {
  return {
    identity: ctx.config.identity,
    capabilityUrl: capabilityUrlFor(req.socket.localAddress, ctx.credentialPort()),
  };
}
