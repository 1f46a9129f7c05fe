import { boundedMessage, isAgentAttentionKind, type AgentAttentionKind } from '../shared/agent-status.js';

/**
 * What `POST /_bottle/status` takes: `bottle-status` sends either its own report
 * (`{"state":"attention","kind":"question","message":"..."}`, `{"state":"working"}`) or, as a
 * Claude Code hook, the hook's input JSON as Claude Code wrote it. Both become one report.
 */
export type AgentReport = { state: 'attention'; kind: AgentAttentionKind; message: string } | { state: 'working' };

/** Hooks after which the agent is at work again: a prompt was submitted, a session began, a tool ran. */
const WORKING_HOOKS: ReadonlySet<string> = new Set(['UserPromptSubmit', 'SessionStart', 'PostToolUse']);

const STOP_MESSAGE = 'finished its turn; waiting for your input';

/** Claude Code's notification types: those that wait for a person, by the kind they are shown as. */
const NOTIFICATION_KINDS: Readonly<Record<string, AgentAttentionKind>> = {
  permission_prompt: 'permission',
  idle_prompt: 'idle',
  elicitation_dialog: 'question',
};

type Json = Record<string, unknown>;

/**
 * The report a body carries; undefined for one that reports nothing the operator needs (an unknown
 * hook, a notification such as auth_success) or that cannot be read. A body cut short by the
 * script's size bound (a PostToolUse input holds the tool's whole output) still names its hook
 * near the start, which is enough for the hooks that only say "working".
 */
export function readAgentReport(body: Buffer): AgentReport | undefined {
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const hook = /"hook_event_name"\s*:\s*"([A-Za-z]{1,40})"/.exec(text)?.[1];
    return hook !== undefined && WORKING_HOOKS.has(hook) ? { state: 'working' } : undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const fields = json as Json;
  return typeof fields.hook_event_name === 'string' ? hookReport(fields) : ownReport(fields);
}

function hookReport(hook: Json): AgentReport | undefined {
  const event = hook.hook_event_name as string;
  if (WORKING_HOOKS.has(event)) return { state: 'working' };
  if (event === 'Stop') return { state: 'attention', kind: 'idle', message: STOP_MESSAGE };
  if (event !== 'Notification') return undefined;
  const message = typeof hook.message === 'string' ? hook.message : '';
  const type = hook.notification_type;
  // Claude Code versions before notification_type said which prompt it was only in the message.
  const kind = typeof type === 'string' ? NOTIFICATION_KINDS[type] : kindFromMessage(message);
  return kind ? { state: 'attention', kind, message: boundedMessage(message) } : undefined;
}

function kindFromMessage(message: string): AgentAttentionKind {
  if (/permission/i.test(message)) return 'permission';
  if (/waiting for your input/i.test(message)) return 'idle';
  return 'question';
}

function ownReport(report: Json): AgentReport | undefined {
  if (report.state === 'working') return { state: 'working' };
  if (report.state !== 'attention') return undefined;
  const kind = report.kind === undefined ? 'question' : report.kind;
  if (!isAgentAttentionKind(kind)) return undefined;
  const message = typeof report.message === 'string' ? report.message : '';
  return { state: 'attention', kind, message: boundedMessage(message) };
}

/**
 * Whether `next` says nothing `last` did not: the same kind of attention again (an idle turn is one
 * however often Claude Code repeats it; a permission or question is the same one only with the same
 * words), or working while working. Such a report writes no line.
 */
export function repeatsReport(last: AgentReport | undefined, next: AgentReport): boolean {
  if (last === undefined) return next.state === 'working';
  if (last.state !== next.state) return false;
  if (last.state === 'working' || next.state === 'working') return true;
  return last.kind === next.kind && (next.kind === 'idle' || last.message === next.message);
}
