/**
 * The gateway's two listening ports inside its container. The same values are
 * exported by src/plan/agent-env.ts (which tells the agent where to send
 * traffic); they are repeated here so the gateway bundle does not pull in
 * the planner.
 */
export const GATEWAY_PROXY_PORT = 3128;
export const GATEWAY_CREDENTIAL_PORT = 3129;
