/**
 * Hosts every bottle may reach because Claude Code itself needs them; they are
 * merged into each bottle's egress.allow and listed separately in the plan so
 * the user sees exactly what was added.
 */
export const DEFAULT_HOSTS: readonly string[] = [
  // The Messages API: the model itself. Without a cred_proxy route the agent calls it directly.
  'api.anthropic.com',
  // Feature flags and usage telemetry Claude Code fetches at startup; blocking it stalls or slows startup.
  'statsig.anthropic.com',
  // OAuth and API-key login flows (`/login`) and account lookups.
  'console.anthropic.com',
  // Claude subscription (OAuth) sign-in and token refresh.
  'claude.ai',
  // Claude Code's crash reporting; denying it only produces a stream of egress.denied noise.
  'sentry.io',
];
