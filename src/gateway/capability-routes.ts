import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isScopedGrant } from '../shared/capability.js';
import { visibleText } from '../shared/visible-text.js';
import { readBoundedBody } from './bounded-body.js';
import type { IssuedRequest } from './capability-book.js';
import { readCapabilityAsk } from './capability-request.js';
import type { GatewayContext } from './context.js';
import type { DecisionFile } from './protocol.js';
import type { TokenBucket } from '../shared/token-bucket.js';
import { sendJson } from './responses.js';

/**
 * `POST /_bottle/capability`: the agent's way to ask the operator for more
 * (another host, or a changed Dockerfile). The gateway records the ask; the
 * operator decides with `bottle approve` / `bottle deny`, and the worker
 * writes the decision into the gateway's decisions folder.
 * `GET /_bottle/capability/<id>[?wait=SECONDS]` answers the request's status,
 * holding a pending one open until it is decided or the wait ends.
 */
export const CAPABILITY_PATH = '/_bottle/capability';
/** A status request waits at most this long; `bottle-request` asks again. */
export const MAX_STATUS_WAIT_SECONDS = 55;
export const MAX_CAPABILITY_BODY_BYTES = 128 * 1024;

/**
 * Each accepted request becomes a decision line, an event and an entry in the
 * bottle's request queue, and waits for a person: a few may come at once,
 * then they are refused (429) until the budget refills.
 */
export const CAPABILITY_BURST = 4;
export const CAPABILITY_REFILL_WINDOW_MS = 10 * 60_000;
/**
 * Refused requests (malformed, a host the manifest would refuse, too large) have a budget of their
 * own, so an agent's mistakes never spend its asks. It is larger: a refusal reaches no person and
 * writes nothing; it still bounds how often the gateway reads and parses a body only to refuse it.
 */
export const CAPABILITY_REFUSAL_BURST = 20;
export const CAPABILITY_REFUSAL_WINDOW_MS = 60_000;

export async function handleCapabilityRequest(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'method_not_allowed', allowed: 'POST' }, { allow: 'POST' });
    return;
  }
  // A request holds a token of each budget while its body is read (so only a few bodies are read at
  // once), then gives back the one its outcome does not spend.
  if (!ctx.capabilityLimiter.tryTake()) {
    refuseUnread(req, res, 'capability_rate_limited', ctx.capabilityLimiter, ASKS_DETAIL);
    return;
  }
  if (!ctx.capabilityRefusalLimiter.tryTake()) {
    ctx.capabilityLimiter.giveBack();
    refuseUnread(req, res, 'capability_refusals_rate_limited', ctx.capabilityRefusalLimiter, REFUSALS_DETAIL);
    return;
  }
  let accepted = false;
  try {
    accepted = await readAndRecord(ctx, req, res);
  } finally {
    (accepted ? ctx.capabilityRefusalLimiter : ctx.capabilityLimiter).giveBack();
  }
}

const ASKS_DETAIL =
  `at most ${CAPABILITY_BURST} capability requests at once, then one every ` +
  `${CAPABILITY_REFILL_WINDOW_MS / CAPABILITY_BURST / 1000} s; wait for the operator to decide the pending ones`;
const REFUSALS_DETAIL =
  `more than ${CAPABILITY_REFUSAL_BURST} refused capability requests in ` +
  `${CAPABILITY_REFUSAL_WINDOW_MS / 1000} s; fix the request by the issues its refusal named`;

/** A 429 with the budget's wait; the body is not read, so a flood costs the gateway no memory and the log nothing. */
function refuseUnread(
  req: IncomingMessage,
  res: ServerResponse,
  error: string,
  budget: TokenBucket,
  detail: string,
): void {
  req.resume();
  const retryAfter = Math.max(1, budget.secondsUntilNext());
  sendJson(
    res,
    429,
    { error, detail, retry_after_seconds: retryAfter },
    { 'retry-after': String(retryAfter), connection: 'close' },
  );
}

/** Reads the ask; a valid one is recorded and answered 202 (true), anything else refused (false). */
async function readAndRecord(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const body = await readBoundedBody(req, MAX_CAPABILITY_BODY_BYTES);
  if (body === 'too_large') {
    sendJson(res, 413, { error: 'body_too_large', max_bytes: MAX_CAPABILITY_BODY_BYTES }, { connection: 'close' });
    return false;
  }
  const read = readCapabilityAsk(body);
  if ('issues' in read) {
    sendJson(res, 400, { error: 'invalid_capability_request', issues: read.issues });
    return false;
  }
  const request = read.ask;
  const scope = {
    ...(request.methods !== undefined ? { methods: request.methods } : {}),
    ...(request.paths !== undefined ? { paths: request.paths } : {}),
  };
  if (isScopedGrant(request)) {
    // A grant widens an inspected entry's rules; the operator is asked only for one that could apply.
    const grantable = ctx.entries.grantable(request.host!, request.port ?? 443);
    if ('problem' in grantable) {
      sendJson(res, 400, { error: 'invalid_capability_request', issues: [`host: ${grantable.problem}`] });
      return false;
    }
  }
  const requestId = randomUUID();
  ctx.capabilities.issue(requestId, {
    kind: request.kind,
    ...(request.host !== undefined ? { host: request.host } : {}),
    ...(request.kind === 'egress' ? { port: request.port ?? 443 } : {}),
    ...scope,
  });
  ctx.decisions.capability({
    request_id: requestId,
    kind: request.kind,
    ...(request.host !== undefined ? { host: request.host } : {}),
    ...(request.kind === 'egress' ? { port: request.port ?? 443 } : {}),
    ...(request.dockerfile !== undefined ? { dockerfile: request.dockerfile } : {}),
    ...scope,
    // A secret the agent put in its reason is recorded by class and fingerprint, never as it was sent.
    reason: ctx.scanner?.redactText?.(request.reason) ?? request.reason,
  });
  sendJson(res, 202, {
    request_id: requestId,
    status: 'pending',
    note: 'the operator decides with bottle approve/deny; requests are decided one at a time, in the order they arrive',
    status_url: `${CAPABILITY_PATH}/${requestId}`,
  });
  return true;
}

/** The answer to `GET /_bottle/capability/<id>`: JSON, or key-value lines with `Accept: text/plain`. */
export async function handleCapabilityStatus(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  encodedId: string,
): Promise<void> {
  if (req.method !== 'GET') {
    sendJson(res, 405, { error: 'method_not_allowed', allowed: 'GET' }, { allow: 'GET' });
    return;
  }
  let requestId: string;
  try {
    requestId = decodeURIComponent(encodedId);
  } catch {
    sendJson(res, 400, { error: 'bad_request', detail: 'the request id is not a valid URL path segment' });
    return;
  }
  const wait = statusWaitSeconds(req.url ?? '');
  ctx.capabilities.reload();
  const request = ctx.capabilities.request(requestId);
  if (!request && !ctx.capabilities.decision(requestId)) {
    sendJson(res, 404, { error: 'unknown_capability_request', request_id: visibleText(requestId) });
    return;
  }
  if (!ctx.capabilities.decision(requestId) && wait > 0) {
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    await ctx.capabilities.waitFor(requestId, wait * 1000, gone.signal);
    if (gone.signal.aborted) return;
    ctx.capabilities.reload();
  }
  const body = statusBody(requestId, request, ctx.capabilities.decision(requestId));
  const told = () => ctx.capabilities.told(requestId);
  if (wantsText(req)) {
    const lines = Object.entries(body).map(([key, value]) => `${key}: ${visibleText(value)}`);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${lines.join('\n')}\n`, told);
    return;
  }
  sendJson(res, 200, body);
  res.once('finish', told);
}

function statusBody(
  requestId: string,
  request: IssuedRequest | undefined,
  decision: DecisionFile | undefined,
): Record<string, string | number> {
  const body: Record<string, string | number> = {
    request_id: requestId,
    status: decision?.decision ?? 'pending',
    ...(request ? { kind: request.kind } : {}),
    ...(request?.host !== undefined ? { host: request.host } : {}),
    ...(request?.port !== undefined ? { port: request.port } : {}),
    ...(request?.methods !== undefined ? { methods: request.methods.join(',') } : {}),
    ...(request?.paths !== undefined ? { paths: request.paths.join(',') } : {}),
  };
  if (decision?.decision === 'approved' && decision.applies) body.applies = decision.applies;
  if (decision?.allow) body.allowed = decision.allow;
  if (decision?.decision === 'denied') body.reason = decision.reason ?? '';
  return body;
}

function statusWaitSeconds(rawUrl: string): number {
  const query = new URL(rawUrl, 'http://gateway').searchParams.get('wait');
  const seconds = Number(query ?? 0);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, MAX_STATUS_WAIT_SECONDS) : 0;
}

function wantsText(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/plain');
}
