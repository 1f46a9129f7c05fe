import { agentEnvironment, type AgentHops } from '../../plan/agent-env.js';
import type { BottlePlan } from '../../plan/schema.js';
import { PIPELOCK_LISTEN_PORT } from './config.js';

export interface PipelockAgentAddresses extends AgentHops {
  /** pipelock's address on the bottle's internal network. */
  pipelockIp: string;
  listenPort?: number;
}

/**
 * The agent's environment when pipelock is the egress hop: the same as with
 * the gateway (ANTHROPIC_BASE_URL, CLAUDE_BOTTLE_GATEWAY_URL and placeholders
 * still point at the gateway's credential port), except that HTTP(S)_PROXY
 * names pipelock and the gateway is added to NO_PROXY, so credential-route
 * and capability requests go straight to the gateway instead of being sent
 * through pipelock, which would refuse an internal address.
 */
export function pipelockAgentEnvironment(
  plan: Pick<BottlePlan, 'credentials'>,
  addresses: PipelockAgentAddresses,
): Record<string, string> {
  const env = agentEnvironment(plan, addresses);
  const proxy = `http://${addresses.pipelockIp}:${addresses.listenPort ?? PIPELOCK_LISTEN_PORT}`;
  const noProxy = `localhost,127.0.0.1,${addresses.gatewayIp}`;
  return {
    ...env,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
  };
}
