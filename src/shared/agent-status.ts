/**
 * What an agent reports about itself through `bottle-status` (and Claude Code's hooks): it needs the
 * operator (and why), or it is working again. The gateway reads the reports, the worker records them
 * as `agent.attention` / `agent.working`, and the CLI shows them; all three agree on these words.
 */

/** Why the agent waits for a person: a permission prompt, a question it asked, or its turn ended. */
export const AGENT_ATTENTION_KINDS = ['permission', 'question', 'idle'] as const;
export type AgentAttentionKind = (typeof AGENT_ATTENTION_KINDS)[number];

/** The agent's message is untrusted text: the gateway keeps at most this many characters of it. */
export const MAX_ATTENTION_MESSAGE_CHARS = 300;

export function isAgentAttentionKind(value: unknown): value is AgentAttentionKind {
  return typeof value === 'string' && (AGENT_ATTENTION_KINDS as readonly string[]).includes(value);
}

/** The first `max` characters (code points, so no surrogate is split), with an ellipsis when cut. */
export function boundedMessage(text: string, max: number = MAX_ATTENTION_MESSAGE_CHARS): string {
  const chars = Array.from(text.length > max * 2 + 2 ? text.slice(0, max * 2 + 2) : text);
  return chars.length <= max ? chars.join('') : `${chars.slice(0, max - 1).join('')}…`;
}
