/**
 * Hosts every bottle may reach because Claude Code itself needs them; they are
 * merged into each bottle's egress.allow and listed separately in the plan so
 * the user sees exactly what was added. Every bottle sets DISABLE_TELEMETRY,
 * DISABLE_ERROR_REPORTING and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
 * (agent-env.ts), so the feature-flag/telemetry host and the crash reporter
 * are not needed, and an allowlisted host the agent can post anything to is an
 * exfiltration channel: they are left out. The README's "Default egress hosts"
 * table gives the reason for each entry and is checked against this list.
 */
export const DEFAULT_HOSTS: readonly string[] = [
  // The Messages API: the model itself. Without a cred_proxy route the agent calls it directly.
  'api.anthropic.com',
  // OAuth and API-key login flows (`/login`) and account lookups, for a bottle without a cred_proxy route.
  'console.anthropic.com',
  // Claude subscription (OAuth) sign-in and token refresh, for a bottle without a cred_proxy route.
  'claude.ai',
];
