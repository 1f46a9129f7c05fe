import type { ServerResponse } from 'node:http';
import type { GatewayContext } from './context.js';
import type { EgressTarget } from './decision-log.js';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { CredentialRequestRefusal } from './path-escape.js';
import type { ScanFinding } from './request-scanner.js';

/**
 * Every refusal the gateway gives is JSON, so an agent can read what was
 * refused and what to do next. Bodies are built from request metadata only.
 */
export type JsonBody = Record<string, unknown>;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: JsonBody,
  extraHeaders: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...extraHeaders,
  });
  res.end(text);
}

/** For sockets Node's server has handed over (CONNECT, client errors): a complete response, then close. */
export function writeJsonAndClose(socket: Duplex, status: number, body: JsonBody): void {
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
        'content-type: application/json\r\n' +
        `content-length: ${Buffer.byteLength(text)}\r\n` +
        'connection: close\r\n\r\n' +
        text,
    );
  } else {
    socket.destroy();
  }
}

export interface DenialContext {
  identity: string;
  /** Where the agent reaches the gateway's credential port (its address on the agent's network). */
  capabilityUrl: string;
}

/** The 403 body: what was refused, why, and the exact call that asks the operator for it. */
export function egressDeniedBody(ctx: DenialContext, host: string, port: number, reason: string): JsonBody {
  const example = JSON.stringify({ kind: 'egress', host, port, reason: '<why the task needs it>' });
  return {
    error: 'egress_denied',
    host,
    port,
    reason,
    how_to_request:
      `ask the operator: POST ${ctx.capabilityUrl} ${example} ` +
      `then the operator runs \`bottle approve ${ctx.identity}\``,
    // The command every bottle ships: it files the request and waits for the operator's answer.
    ask_with:
      `bottle-request egress ${host.includes(':') ? `[${host}]` : host}:${port} ` +
      "--reason '<why the task needs it>'",
  };
}

export function capabilityUrlFor(localAddress: string | undefined, credentialPort: number): string {
  const address = localAddress?.replace(/^::ffff:/, '') ?? 'gateway';
  const host = address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${credentialPort}/_bottle/capability`;
}

/** Records and answers a request over the bottle's per-minute budget. */
export function refuseRateLimited(ctx: GatewayContext, res: ServerResponse, target: EgressTarget): void {
  ctx.decisions.denied(target, 'rate_limited');
  sendJson(res, 429, rateLimitedBody(ctx), { 'retry-after': '60' });
}

export function rateLimitedBody(ctx: GatewayContext): JsonBody {
  return { error: 'rate_limited', limit_per_minute: ctx.config.limits.requests_per_minute };
}

/** Records and answers a request that must not carry a secret (path escape, reflecting method). */
export function refuseCredentialRequest(
  ctx: GatewayContext,
  res: ServerResponse,
  target: EgressTarget,
  refusal: CredentialRequestRefusal,
): void {
  ctx.decisions.denied(target, refusal.reason);
  sendJson(res, refusal.status, refusal.body);
}

/** The 403 for a request inspection refused: which class of secret, which rule, where; never the value. */
export function inspectionDeniedBody(host: string, port: number, finding: ScanFinding): JsonBody {
  return {
    error: 'egress_denied',
    host,
    port,
    reason: finding.reason,
    class: finding.detail.class,
    rule: finding.detail.rule,
    where: finding.detail.where,
    ...(finding.detail.fingerprint !== undefined ? { fingerprint: finding.detail.fingerprint } : {}),
    detail: 'the request carries what looks like a credential; it was not sent',
  };
}
