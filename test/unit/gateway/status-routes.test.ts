/**
 * The agent's status endpoint (src/gateway/status-routes.ts, agent-report.ts): Claude Code's hook
 * input and bottle-status's own reports become status lines; repeats write nothing; a flood is
 * refused unread past its own budget, which is not the agent's request budget. Loopback only.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { readAgentReport, repeatsReport } from '../../../src/gateway/agent-report.js';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import type { GatewayLine } from '../../../src/gateway/protocol.js';
import { STATUS_BURST, STATUS_PATH } from '../../../src/gateway/status-routes.js';
import { MAX_ATTENTION_MESSAGE_CHARS } from '../../../src/shared/agent-status.js';

const hook = (fields: Record<string, unknown>) =>
  Buffer.from(JSON.stringify({ session_id: 's', transcript_path: '/t', cwd: '/w', ...fields }));

describe('readAgentReport', () => {
  it('reads a permission prompt with Claude Code’s message', () => {
    const body = hook({
      hook_event_name: 'Notification',
      notification_type: 'permission_prompt',
      message: 'Claude needs your permission to use Bash',
    });
    expect(readAgentReport(body)).toEqual({
      state: 'attention',
      kind: 'permission',
      message: 'Claude needs your permission to use Bash',
    });
  });

  it('reads the idle prompt, a question dialog, and the end of a turn', () => {
    const notification = (type: string) =>
      readAgentReport(hook({ hook_event_name: 'Notification', notification_type: type, message: 'm' }));
    expect(notification('idle_prompt')).toMatchObject({ kind: 'idle' });
    expect(notification('elicitation_dialog')).toMatchObject({ kind: 'question' });
    expect(notification('auth_success')).toBeUndefined();
    expect(readAgentReport(hook({ hook_event_name: 'Stop' }))).toMatchObject({ state: 'attention', kind: 'idle' });
  });

  it('tells the prompt from the message when Claude Code names no notification type', () => {
    const report = readAgentReport(
      hook({ hook_event_name: 'Notification', message: 'Claude needs your permission to use Write' }),
    );
    expect(report).toMatchObject({ kind: 'permission' });
  });

  it('reads a submitted prompt, a new session and a tool run as working, even from a body cut short', () => {
    for (const name of ['UserPromptSubmit', 'SessionStart', 'PostToolUse'])
      expect(readAgentReport(hook({ hook_event_name: name }))).toEqual({ state: 'working' });
    const cut = hook({ hook_event_name: 'PostToolUse', tool_response: 'x'.repeat(100) }).subarray(0, 90);
    expect(readAgentReport(cut)).toEqual({ state: 'working' });
  });

  it('bounds the message, and reads bottle-status’s own reports (question unless a kind is given)', () => {
    const long = readAgentReport(Buffer.from(JSON.stringify({ state: 'attention', message: 'y'.repeat(5000) })));
    expect(long).toMatchObject({ kind: 'question' });
    expect(Array.from((long as { message: string }).message)).toHaveLength(MAX_ATTENTION_MESSAGE_CHARS);
    expect(readAgentReport(Buffer.from('{"state":"attention","kind":"root","message":"m"}'))).toBeUndefined();
    expect(readAgentReport(Buffer.from('{"state":"working"}'))).toEqual({ state: 'working' });
  });
});

describe('repeatsReport', () => {
  const idle = { state: 'attention', kind: 'idle', message: 'a' } as const;
  const permission = { state: 'attention', kind: 'permission', message: 'Bash' } as const;
  it('takes the same idle turn however worded, the same prompt only with the same words', () => {
    expect(repeatsReport(idle, { ...idle, message: 'b' })).toBe(true);
    expect(repeatsReport(permission, permission)).toBe(true);
    expect(repeatsReport(permission, { ...permission, message: 'Write' })).toBe(false);
    expect(repeatsReport(idle, { state: 'working' })).toBe(false);
    expect(repeatsReport(undefined, { state: 'working' })).toBe(true);
  });
});

function post(port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const where = { host: '127.0.0.1', port, path: STATUS_PATH, method: 'POST', agent: false };
    const req = httpRequest(where, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the status endpoint', () => {
  let gateway: RunningGateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  async function start(): Promise<GatewayLine[]> {
    const lines: GatewayLine[] = [];
    const config = { identity: 'stat-ab12c', proxy_port: 0, credential_port: 0, limits: { requests_per_minute: 5 } };
    gateway = await startGateway(config, {}, { onDecision: (l) => lines.push(l), now: () => 0 });
    return lines;
  }

  it('numbers attention and working lines with the decisions, and writes a repeat once', async () => {
    const lines = await start();
    const port = gateway!.credentialPort;
    const prompt = JSON.stringify({
      hook_event_name: 'Notification',
      notification_type: 'permission_prompt',
      message: 'Claude needs your permission to use Bash',
    });
    expect(await post(port, prompt)).toBe(202);
    expect(await post(port, prompt)).toBe(200);
    expect(await post(port, JSON.stringify({ hook_event_name: 'PostToolUse' }))).toBe(202);
    expect(lines).toEqual([
      expect.objectContaining({ t: 'status', n: 1, state: 'attention', kind: 'permission' }),
      expect.objectContaining({ t: 'status', n: 2, state: 'working' }),
    ]);
  });

  it('refuses a flood past its own budget unread, without spending the agent’s request budget', async () => {
    const lines = await start();
    const port = gateway!.credentialPort;
    const codes: number[] = [];
    for (let i = 0; i < 300; i++) {
      const body = i % 2 ? '{"state":"working"}' : JSON.stringify({ state: 'attention', message: `m${i}` });
      codes.push(await post(port, body));
    }
    expect(codes.filter((c) => c === 429)).toHaveLength(300 - STATUS_BURST);
    expect(lines.length).toBeLessThanOrEqual(STATUS_BURST);
    // The agent's own budget (5 a minute here) is untouched: an ordinary request is not rate limited.
    const capability = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/_bottle/capability', method: 'POST', agent: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    expect(capability).toBe(400);
  });
});
