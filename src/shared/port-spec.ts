import { isIP } from 'node:net';

/**
 * A published port as the operator writes it: `[ADDR:]HOST_PORT:BOTTLE_PORT`, as `docker run -p` takes it
 * (IPv4 addresses only). The address defaults to loopback, so a dev server is reachable from this machine only.
 */
export interface PortSpec {
  address: string;
  host_port: number;
  bottle_port: number;
}

export const DEFAULT_PUBLISH_ADDRESS = '127.0.0.1';

export class PortSpecError extends Error {
  override name = 'PortSpecError';
}

function portNumber(text: string, what: string, spec: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535)
    throw new PortSpecError(`${JSON.stringify(spec)}: ${what} must be a port number from 1 to 65535`);
  return n;
}

export function parsePortSpec(spec: string): PortSpec {
  const parts = spec.trim().split(':');
  if (parts.length < 2 || parts.length > 3)
    throw new PortSpecError(`${JSON.stringify(spec)} is not [ADDR:]HOST_PORT:BOTTLE_PORT, e.g. "127.0.0.1:3000:3000"`);
  const address = parts.length === 3 ? parts[0] : DEFAULT_PUBLISH_ADDRESS;
  if (isIP(address) !== 4)
    throw new PortSpecError(`${JSON.stringify(spec)}: the address must be an IPv4 address such as 127.0.0.1`);
  const [hostText, bottleText] = parts.slice(-2);
  return {
    address,
    host_port: portNumber(hostText, 'HOST_PORT', spec),
    bottle_port: portNumber(bottleText, 'BOTTLE_PORT', spec),
  };
}

export function formatPortSpec(port: PortSpec): string {
  return `${port.address}:${port.host_port}:${port.bottle_port}`;
}

/** Reachable from other machines: anything but a loopback address. */
export function isExposedAddress(address: string): boolean {
  return !address.startsWith('127.');
}

/** One entry per host port; the same host port twice is a mistake the operator should hear about. */
export function mergePortSpecs(specs: readonly PortSpec[]): PortSpec[] {
  const byHostPort = new Map<string, PortSpec>();
  for (const spec of specs) {
    const key = String(spec.host_port);
    const seen = byHostPort.get(key);
    if (seen && formatPortSpec(seen) !== formatPortSpec(spec))
      throw new PortSpecError(
        `host port ${spec.host_port} is published twice (${formatPortSpec(seen)}, ${formatPortSpec(spec)})`,
      );
    byHostPort.set(key, spec);
  }
  return [...byHostPort.values()].sort((a, b) => a.host_port - b.host_port);
}
