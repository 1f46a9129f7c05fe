import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CapabilityAskSchema } from '../shared/capability.js';
import type { GatewayContext } from './context.js';
import { sendJson } from './responses.js';

/**
 * `POST /_bottle/capability`: the agent's way to ask the operator for more
 * (another host, or a changed Dockerfile). The gateway only records the ask;
 * the operator decides with `bottle approve` / `bottle deny`.
 */
export const MAX_CAPABILITY_BODY_BYTES = 128 * 1024;

export async function handleCapabilityRequest(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'method_not_allowed', allowed: 'POST' }, { allow: 'POST' });
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
  const request = parsed.data;
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
