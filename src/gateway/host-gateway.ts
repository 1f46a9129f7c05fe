import { isIP } from 'node:net';

/**
 * `host-gateway` in extra_hosts means what it means to Docker: the daemon's
 * host-gateway address (the default bridge's, or `host-gateway-ip` in
 * daemon.json). The gateway container is created with the same extra hosts,
 * so Docker itself writes that address into the container's /etc/hosts; the
 * gateway reads it from there rather than guessing it.
 */
export const HOST_GATEWAY = 'host-gateway';

export class UnresolvedHostGatewayError extends Error {
  override name = 'UnresolvedHostGatewayError';
}

/** Replaces each `host-gateway` target with the address the hosts file gives its name. */
export function resolveHostGateway(extraHosts: Record<string, string>, hostsFile: string): Record<string, string> {
  const addresses = new Map<string, string>();
  for (const line of hostsFile.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (!address || isIP(address) === 0) continue;
    for (const name of names) if (!addresses.has(name.toLowerCase())) addresses.set(name.toLowerCase(), address);
  }
  return Object.fromEntries(
    Object.entries(extraHosts).map(([name, target]) => {
      if (target !== HOST_GATEWAY) return [name, target];
      const address = addresses.get(name.toLowerCase());
      if (!address) {
        throw new UnresolvedHostGatewayError(
          `extra host ${name} maps to host-gateway, but the hosts file names no address for it`,
        );
      }
      return [name, address];
    }),
  );
}
