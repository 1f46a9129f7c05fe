import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { isIP } from 'node:net';

/**
 * An agent whose every "DNS lookup" answers with the one address the gateway
 * already checked. The request keeps its real host name (Host header, TLS
 * SNI and certificate check), but the connection can only go to the vetted
 * address, so a second, different DNS answer (rebinding) is never consulted.
 */
export function pinnedAgent(address: string, secure: boolean): HttpAgent {
  const family = isIP(address);
  const lookup = ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
  // One agent per request, no keep-alive: a pooled socket must not outlive the check that admitted it.
  return secure ? new HttpsAgent({ keepAlive: false, lookup }) : new HttpAgent({ keepAlive: false, lookup });
}

/**
 * An agent that opens every connection with `connect` (the gateway's tunnel
 * connector, already bound to the vetted address and port), so requests read
 * out of a plain-HTTP tunnel go exactly where the tunnel was admitted to.
 */
export function connectorAgent(connect: () => Socket): HttpAgent {
  const agent = new HttpAgent({ keepAlive: false });
  Object.assign(agent, { createConnection: () => connect() });
  return agent;
}
