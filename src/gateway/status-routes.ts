import type { IncomingMessage, ServerResponse } from 'node:http';
import { readAgentReport } from './agent-report.js';
import type { AgentStatusReports } from './agent-status-reports.js';
import { readBoundedBody } from './bounded-body.js';
import { sendJson } from './responses.js';

/**
 * `POST /_bottle/status`: the agent says it needs the operator, or that it is working again
 * (`bottle-status`, called by Claude Code's hooks or by any agent). A report that changes what the
 * operator should know becomes a status line, which the worker records as `agent.attention` or
 * `agent.working`; a repeat writes nothing. Hooks fire on every tool call, so the endpoint has a
 * budget of its own (never the agent's request budget): over it, reports are refused unread.
 */
export const STATUS_PATH = '/_bottle/status';
/** Enough for a Notification hook's input; `bottle-status` sends at most this much of any hook's. */
export const MAX_STATUS_BODY_BYTES = 16 * 1024;
export const STATUS_BURST = 30;
export const STATUS_REFILL_WINDOW_MS = 60_000;

export async function handleStatusReport(
  reports: AgentStatusReports,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'method_not_allowed', allowed: 'POST' }, { allow: 'POST' });
    return;
  }
  if (!reports.limiter.tryTake()) {
    req.resume();
    const retryAfter = Math.max(1, reports.limiter.secondsUntilNext());
    const detail = `at most ${STATUS_BURST} status reports per ${STATUS_REFILL_WINDOW_MS / 1000} s`;
    sendJson(
      res,
      429,
      { error: 'status_rate_limited', detail, retry_after_seconds: retryAfter },
      { 'retry-after': String(retryAfter), connection: 'close' },
    );
    return;
  }
  const body = await readBoundedBody(req, MAX_STATUS_BODY_BYTES);
  if (body === 'too_large') {
    sendJson(res, 413, { error: 'body_too_large', max_bytes: MAX_STATUS_BODY_BYTES }, { connection: 'close' });
    return;
  }
  const report = readAgentReport(body);
  if (!report) {
    sendJson(res, 200, { recorded: false, detail: 'nothing the operator needs to know' });
    return;
  }
  const recorded = reports.record(report);
  sendJson(res, recorded ? 202 : 200, { recorded, state: report.state });
}
