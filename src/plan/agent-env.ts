import { GATEWAY_CREDENTIAL_PORT, GATEWAY_PROXY_PORT } from '../gateway/protocol.js';
import { formatSentinel, NETWATCH_SENTINEL_ENV, type NetwatchSentinel } from '../netwatch/protocol.js';
import type { BottlePlan } from './schema.js';
import { hasSsh, SSH_AUTH_SOCK_TARGET } from './ssh-config.js';

export { GATEWAY_CREDENTIAL_PORT, GATEWAY_PROXY_PORT };

/**
 * The agent container's environment and in-container paths. Shared by the
 * plan (env_names) and the Docker effects (the real environment), so the two
 * can never disagree.
 */

export const AGENT_HOME = '/home/node';
export const PROMPT_TARGET = '/home/node/.claude-bottle/prompt.md';
export const SKILLS_TARGET_DIR = '/home/node/.claude/skills';
export const SSH_TARGET_DIR = '/home/node/.ssh';
export const TRANSCRIPT_TARGET = '/home/node/.claude';
/** The gateway's interception CA (host routes, inspected hosts), and the system bundle with it appended. */
export const GATEWAY_CA_TARGET = '/home/node/.claude-bottle/gateway-ca.pem';
export const CA_BUNDLE_TARGET = '/home/node/.claude-bottle/ca-certificates.pem';
/** Where Debian-based images keep the system CA bundle the agent's own TLS clients trust. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

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

/** Host routes and inspected hosts mean the gateway terminates TLS for them, so the agent must trust its CA. */
export function interceptsTls(plan: Pick<BottlePlan, 'credentials' | 'egress_entries'>): boolean {
  return (
    plan.credentials.some((route) => route.role !== 'anthropic-base-url' && Boolean(route.host)) ||
    (plan.egress_entries ?? []).some((entry) => entry.inspect)
  );
}

/**
 * The trust settings of common TLS clients: Node (and Claude Code) add
 * NODE_EXTRA_CA_CERTS to their own roots; OpenSSL-based tools (curl, git,
 * Python) read a whole bundle, so theirs is the system bundle plus the CA.
 */
const INTERCEPTION_TRUST_ENV: Readonly<Record<string, string>> = {
  NODE_EXTRA_CA_CERTS: GATEWAY_CA_TARGET,
  SSL_CERT_FILE: CA_BUNDLE_TARGET,
  CURL_CA_BUNDLE: CA_BUNDLE_TARGET,
  GIT_SSL_CAINFO: CA_BUNDLE_TARGET,
  REQUESTS_CA_BUNDLE: CA_BUNDLE_TARGET,
};

/** Where the agent reaches the gateway, and the sentinel its first program knocks on when a network watch runs. */
export interface AgentHops {
  gatewayIp: string;
  sentinel: NetwatchSentinel;
}

export function agentEnvironment(
  plan: Pick<BottlePlan, 'credentials' | 'egress_entries'> & {
    ssh?: BottlePlan['ssh'];
    containers?: BottlePlan['containers'];
  },
  { gatewayIp, sentinel }: AgentHops,
): Record<string, string> {
  const proxy = `http://${gatewayIp}:${GATEWAY_PROXY_PORT}`;
  const credentialPort = `http://${gatewayIp}:${GATEWAY_CREDENTIAL_PORT}`;
  const env: Record<string, string> = {
    HOME: AGENT_HOME,
    // Where images/agent/bottle-request files capability requests: the gateway's credential port.
    CLAUDE_BOTTLE_GATEWAY_URL: credentialPort,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    // The credential port (ANTHROPIC_BASE_URL, bottle-request) is the gateway itself: sent
    // through the forward proxy it would be refused as a non-allowlisted private address.
    NO_PROXY: `localhost,127.0.0.1,${gatewayIp}`,
    no_proxy: `localhost,127.0.0.1,${gatewayIp}`,
    ...QUIET_AGENT_ENV,
  };
  const anthropic = plan.credentials.find((r) => r.role === 'anthropic-base-url');
  if (anthropic) {
    env.ANTHROPIC_BASE_URL = credentialPort;
    if (anthropic.auth === 'oauth') env.CLAUDE_CODE_OAUTH_TOKEN = CREDENTIAL_PLACEHOLDER;
    if (anthropic.auth === 'api-key') env.ANTHROPIC_API_KEY = CREDENTIAL_PLACEHOLDER;
  }
  if (interceptsTls(plan)) Object.assign(env, INTERCEPTION_TRUST_ENV);
  // A socket that reaches the gateway's ssh-agent, never a key.
  if (hasSsh(plan)) env.SSH_AUTH_SOCK = SSH_AUTH_SOCK_TARGET;
  // The agent's first program waits until the network watch records (src/agent-init/wait-for-proxy.c).
  if (plan.containers?.netwatch) env[NETWATCH_SENTINEL_ENV] = formatSentinel(sentinel);
  return env;
}

/** Names only: the plan is printed and stored, values are decided at launch. */
export function agentEnvNames(
  plan: Pick<BottlePlan, 'credentials' | 'egress_entries'> & {
    ssh?: BottlePlan['ssh'];
    containers?: BottlePlan['containers'];
  },
): string[] {
  return Object.keys(agentEnvironment(plan, { gatewayIp: '0.0.0.0', sentinel: { host: '0.0.0.0', port: 0 } })).sort();
}
