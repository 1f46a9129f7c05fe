/**
 * Claude Code Remote Control (https://code.claude.com/docs/en/remote-control): `claude remote-control`, or
 * `claude --remote-control`, registers the running session with the Anthropic API and polls it for work over
 * outbound HTTPS; claude.ai/code and the Claude apps drive it through that relay. It needs a claude.ai
 * subscription sign-in (`/login`) held by Claude Code itself: API keys, ANTHROPIC_BASE_URL/ANTHROPIC_AUTH_TOKEN
 * gateways and the inference-only `claude setup-token` token are refused by Claude Code before it connects.
 * The gateway can only stand in for a credential Claude Code does not check itself, so Remote Control
 * would need the operator's real account credential inside the bottle: a launch refuses it instead.
 */

/** The hosts Remote Control talks to: the API that registers and relays the session, and claude.ai's sign-in. */
export const REMOTE_CONTROL_HOSTS: readonly string[] = ['api.anthropic.com', 'claude.ai'];

export const REMOTE_CONTROL_REFUSAL =
  'remote control is refused: Claude Code only enables it for a claude.ai subscription login it holds itself ' +
  '(API keys and gateway tokens are refused), so the agent would hold your real account token; ' +
  'the bottle keeps that token outside (see README, Remote control)';
