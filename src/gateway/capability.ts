import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CapabilityAskSchema, type CapabilityAsk, type CapabilityKind } from '../shared/capability.js';
import { HostPatternError, parseHostPattern } from '../shared/host-pattern.js';
import { visibleText } from '../shared/visible-text.js';
import type { GatewayContext } from './context.js';
import { decisionFileName, DecisionFileSchema, type DecisionFile, type GatewayLine } from './protocol.js';
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
/** A reason is read by a person deciding; it is a few sentences, not a document. */
export const MAX_CAPABILITY_REASON_CHARS = 1000;
/**
 * Characters that move the cursor, rewrite the terminal or reorder what is shown: C0 controls other
 * than tab and newline, DEL, C1, line/paragraph separators, bidirectional overrides, lone surrogates.
 */
const UNSHOWABLE = /[^\P{Cc}\t\n]|[\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;

export async function handleCapabilityRequest(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
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
  ctx.capabilities.issue(requestId, {
    kind: request.kind,
    ...(request.host !== undefined ? { host: request.host } : {}),
    ...(request.kind === 'egress' ? { port: request.port ?? 443 } : {}),
  });
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
    status_url: `${CAPABILITY_PATH}/${requestId}`,
  });
}

interface IssuedRequest {
  kind: CapabilityKind;
  host?: string;
  port?: number;
}

/**
 * The requests this gateway issued and the decisions the worker has written
 * for them. Reading the decisions folder is the only way a decision arrives:
 * an approved egress entry is added to the allowlist before anyone is told.
 */
export class CapabilityBook {
  private readonly issued = new Map<string, IssuedRequest>();
  private readonly decided = new Map<string, DecisionFile>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly toldIds = new Set<string>();

  constructor(
    private readonly dir: string | undefined,
    private readonly onAllow: (entry: string) => void,
    private readonly emit: (line: GatewayLine) => void,
    private readonly log: (message: string) => void,
  ) {}

  issue(requestId: string, request: IssuedRequest): void {
    this.issued.set(requestId, request);
  }

  request(requestId: string): IssuedRequest | undefined {
    return this.issued.get(requestId);
  }

  decision(requestId: string): DecisionFile | undefined {
    return this.decided.get(requestId);
  }

  /** Records that the agent has been sent the decision (said once per request). */
  told(requestId: string): void {
    if (!this.decided.has(requestId) || this.toldIds.has(requestId)) return;
    this.toldIds.add(requestId);
    this.emit({ t: 'told', request_id: requestId });
  }

  /** Takes in decision files not seen yet; a malformed one is skipped (and said so) until it is rewritten. */
  reload(): void {
    if (this.dir === undefined) return;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      if (!name.endsWith('.json') || this.decided.has(name.slice(0, -'.json'.length))) continue;
      const decision = this.readDecision(name);
      if (decision) this.take(decision);
    }
  }

  /** Resolves when `requestId` is decided or `ms` has passed; `cancel` ends the wait early. */
  waitFor(requestId: string, ms: number, cancel: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiters.get(requestId) ?? new Set<() => void>();
      this.waiters.set(requestId, waiters);
      const done = () => {
        clearTimeout(timer);
        cancel.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0) this.waiters.delete(requestId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      cancel.addEventListener('abort', done, { once: true });
      waiters.add(done);
    });
  }

  private readDecision(name: string): DecisionFile | undefined {
    try {
      const parsed = DecisionFileSchema.safeParse(JSON.parse(readFileSync(join(this.dir!, name), 'utf8')));
      if (parsed.success && decisionFileName(parsed.data.request_id) === name) return parsed.data;
    } catch {
      // Reported below, like a file of the wrong shape.
    }
    this.log(`decision file ${visibleText(name)} is malformed; ignored`);
    return undefined;
  }

  private take(decision: DecisionFile): void {
    if (decision.decision === 'approved' && decision.applies === 'live' && decision.allow !== null) {
      try {
        this.onAllow(decision.allow);
      } catch (err) {
        this.log(`decision ${decision.request_id}: allowlist entry refused: ${(err as Error).message}`);
        return;
      }
    }
    this.decided.set(decision.request_id, decision);
    this.emit({ t: 'answered', request_id: decision.request_id, decision: decision.decision });
    for (const wake of [...(this.waiters.get(decision.request_id) ?? [])]) wake();
  }
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
