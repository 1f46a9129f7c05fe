import type { BottlePlan } from './schema.js';

/**
 * The agent container's environment and in-container paths. Shared by the
 * plan (env_names) and the Docker effects (the real environment), so the two
 * can never disagree.
 */
export const GATEWAY_PROXY_PORT = 3128;
export const GATEWAY_CREDENTIAL_PORT = 3129;

export const AGENT_HOME = '/home/node';
export const PROMPT_TARGET = '/home/node/.claude-bottle/prompt.md';
export const SKILLS_TARGET_DIR = '/home/node/.claude/skills';
export const SSH_TARGET_DIR = '/home/node/.ssh';
export const TRANSCRIPT_TARGET = '/home/node/.claude';

/**
 * What the agent sees instead of a real Anthropic secret. The gateway swaps
 * it for the real one on the credential port; it is deliberately not secret.
 */
export const CREDENTIAL_PLACEHOLDER = 'claude-bottle-placeholder-not-a-secret';

/**
 * Claude Code's switches for traffic a sandbox has no use for (telemetry,
 * error reporting, auto-update, feature-flag and connectivity checks). Without
 * them `claude -p` waits about 13 s on hosts it cannot reach before it even
 * calls the Messages API, and every attempt is one more egress decision.
 */
export const QUIET_AGENT_ENV: Readonly<Record<string, string>> = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
};

export function agentEnvironment(plan: Pick<BottlePlan, 'credentials'>, gatewayIp: string): Record<string, string> {
  const proxy = `http://${gatewayIp}:${GATEWAY_PROXY_PORT}`;
  const env: Record<string, string> = {
    HOME: AGENT_HOME,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    // The credential port (ANTHROPIC_BASE_URL) is the gateway itself: sent through
    // the forward proxy it would be refused as a non-allowlisted private address.
    NO_PROXY: `localhost,127.0.0.1,${gatewayIp}`,
    no_proxy: `localhost,127.0.0.1,${gatewayIp}`,
    ...QUIET_AGENT_ENV,
  };
  const anthropic = plan.credentials.find((r) => r.role === 'anthropic-base-url');
  if (anthropic) {
    env.ANTHROPIC_BASE_URL = `http://${gatewayIp}:${GATEWAY_CREDENTIAL_PORT}`;
    if (anthropic.auth === 'oauth') env.CLAUDE_CODE_OAUTH_TOKEN = CREDENTIAL_PLACEHOLDER;
    if (anthropic.auth === 'api-key') env.ANTHROPIC_API_KEY = CREDENTIAL_PLACEHOLDER;
  }
  return env;
}

/** Names only: the plan is printed and stored, values are decided at launch. */
export function agentEnvNames(plan: Pick<BottlePlan, 'credentials'>): string[] {
  return Object.keys(agentEnvironment(plan, '0.0.0.0')).sort();
}
