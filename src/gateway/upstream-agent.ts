import { Agent as HttpAgent } from 'node:http';
import type { LookupFunction, Socket } from 'node:net';
import { isIP } from 'node:net';

/**
 * A "DNS lookup" that answers with the one address the gateway already
 * checked. A request keeps its real host name (Host header, TLS SNI and
 * certificate check), but its connection can only go to the vetted address,
 * so a second, different DNS answer (rebinding) is never consulted.
 */
export function pinnedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
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
