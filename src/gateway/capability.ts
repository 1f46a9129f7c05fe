import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CapabilityAskSchema, type CapabilityAsk } from '../shared/capability.js';
import { HostPatternError, parseHostPattern } from '../shared/host-pattern.js';
import type { GatewayContext } from './context.js';
import { sendJson } from './responses.js';

/**
 * `POST /_bottle/capability`: the agent's way to ask the operator for more
 * (another host, or a changed Dockerfile). The gateway only records the ask;
 * the operator decides with `bottle approve` / `bottle deny`.
 */
export const MAX_CAPABILITY_BODY_BYTES = 128 * 1024;

/**
 * Each accepted request becomes a decision line, an event and an entry in the
 * bottle's request queue, and waits for a person: a few may come at once,
 * then they are refused (429) until the budget refills.
 */
export const CAPABILITY_BURST = 4;
export const CAPABILITY_REFILL_WINDOW_MS = 10 * 60_000;
/** A reason is read by a person deciding; it is a few sentences, not a document. */
export const MAX_CAPABILITY_REASON_CHARS = 1000;
/**
 * Characters that move the cursor, rewrite the terminal or reorder what is shown: C0 controls other
 * than tab and newline, DEL, C1, line/paragraph separators, bidirectional overrides, lone surrogates.
 */
const UNSHOWABLE = /[^\P{Cc}\t\n]|[\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;

export async function handleCapabilityRequest(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'method_not_allowed', allowed: 'POST' }, { allow: 'POST' });
    return;
  }
  if (!ctx.capabilityLimiter.tryTake()) {
    // The body is not read: a flood costs the gateway no memory and the event log nothing.
    req.resume();
    const retryAfter = Math.max(1, ctx.capabilityLimiter.secondsUntilNext());
    sendJson(
      res,
      429,
      {
        error: 'capability_rate_limited',
        detail:
          `at most ${CAPABILITY_BURST} capability requests at once, then one every ` +
          `${CAPABILITY_REFILL_WINDOW_MS / CAPABILITY_BURST / 1000} s; ` +
          'wait for the operator to decide the pending ones',
        retry_after_seconds: retryAfter,
      },
      { 'retry-after': String(retryAfter), connection: 'close' },
    );
    return;
  }
  const body = await readBodyLimited(req, MAX_CAPABILITY_BODY_BYTES);
  if (body === 'too_large') {
    sendJson(res, 413, { error: 'body_too_large', max_bytes: MAX_CAPABILITY_BODY_BYTES }, { connection: 'close' });
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    sendJson(res, 400, { error: 'invalid_capability_request', issues: ['body is not JSON'] });
    return;
  }
  const parsed = CapabilityAskSchema.safeParse(json);
  if (!parsed.success) {
    sendJson(res, 400, {
      error: 'invalid_capability_request',
      issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`),
    });
    return;
  }
  const problems = askProblems(parsed.data);
  if (problems.length > 0) {
    sendJson(res, 400, { error: 'invalid_capability_request', issues: problems });
    return;
  }
  const { host } = parsed.data;
  const request = { ...parsed.data, ...(host !== undefined ? { host: canonicalPattern(host) } : {}) };
  const requestId = randomUUID();
  ctx.decisions.capability({
    request_id: requestId,
    kind: request.kind,
    ...(request.host !== undefined ? { host: request.host } : {}),
    ...(request.kind === 'egress' ? { port: request.port ?? 443 } : {}),
    ...(request.dockerfile !== undefined ? { dockerfile: request.dockerfile } : {}),
    reason: request.reason,
  });
  sendJson(res, 202, {
    request_id: requestId,
    status: 'pending',
    note: 'the operator decides with bottle approve/deny; requests are decided one at a time, in the order they arrive',
  });
}

/** What the shared schema leaves to the gateway: the host as the manifest would take it, a showable reason. */
export function askProblems(ask: CapabilityAsk): string[] {
  const problems: string[] = [];
  if (ask.host !== undefined) {
    try {
      const pattern = parseHostPattern(ask.host);
      if (pattern.port !== null) problems.push('host: give the port in "port", not in "host"');
    } catch (err) {
      const why = err instanceof HostPatternError ? err.message : String(err);
      problems.push(`host: ${why}`);
    }
  }
  if (ask.reason.length > MAX_CAPABILITY_REASON_CHARS) {
    problems.push(`reason: at most ${MAX_CAPABILITY_REASON_CHARS} characters`);
  }
  if (UNSHOWABLE.test(ask.reason)) {
    problems.push('reason: control characters (other than tab and newline) and bidirectional overrides are refused');
  }
  return problems;
}

/** The host as the allowlist entry an approval would add writes it: lowercase, brackets around IPv6. */
function canonicalPattern(host: string): string {
  const pattern = parseHostPattern(host);
  const name = pattern.host.includes(':') ? `[${pattern.host}]` : pattern.host;
  return pattern.kind === 'subdomains' ? `*.${name}` : name;
}

function readBodyLimited(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      resolve('too_large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve('too_large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
