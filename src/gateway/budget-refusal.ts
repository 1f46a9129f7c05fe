import type { ServerResponse } from 'node:http';
import { formatBudgetAmount } from '../shared/budget.js';
import type { GatewayContext } from './context.js';
import type { EgressTarget } from './decision-log.js';

/** The Messages API call that usage is read from and a spent budget refuses. */
export function isMessagesCall(method: string, pathOnly: string): boolean {
  return method === 'POST' && pathOnly.replace(/\/+$/, '') === '/v1/messages';
}

/**
 * Answers a Messages API call once the bottle's budget is spent, in the API's own error shape.
 * 402 `billing_error` with `x-should-retry: false` is what Claude Code shows as
 * "API Error: 402 <message>" and gives up on after one try (measured with its binary: 400 was
 * sent again, 403 was shown as a failed login, 429 without the header is retried with backoff).
 */
export function refuseBudgetSpent(ctx: GatewayContext, res: ServerResponse, target: EgressTarget): void {
  const standing = ctx.usage?.standing();
  const spent = standing
    ? ` (${formatBudgetAmount(standing.spent, standing.unit)} of ${formatBudgetAmount(standing.limit, standing.unit)})`
    : '';
  ctx.decisions.denied(target, 'budget_exhausted');
  const body = JSON.stringify({
    type: 'error',
    error: {
      type: 'billing_error',
      message:
        `claude-bottle: this bottle has spent its budget${spent}; ` +
        `the operator can raise it with: bottle budget ${ctx.config.identity} --add N`,
    },
  });
  res.writeHead(402, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-should-retry': 'false',
  });
  res.end(body);
}
