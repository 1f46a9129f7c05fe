/**
 * The address pool bottle networks take their subnets from
 * (`CLAUDE_BOTTLE_SUBNET_POOL`), instead of Docker's default address pools:
 * each network gets a small subnet of its own, so one host runs many
 * bottles. The daemon refuses a subnet that overlaps one it already has, so
 * it is the arbiter between concurrent starts; this module only proposes
 * candidates, in an order that differs per network, and names the fixed
 * addresses inside one.
 */
export const SUBNET_POOL_ENV = 'CLAUDE_BOTTLE_SUBNET_POOL';
/** Outside Docker's own default pools (172.17-31.0.0/16, 192.168.0.0/16). */
export const DEFAULT_SUBNET_POOL = '10.213.0.0/16';
/** Room for the bridge, the gateway, the agent and pipelock, with the network and broadcast addresses. */
export const BOTTLE_SUBNET_PREFIX = 29;

export interface Ipv4Cidr {
  base: number;
  prefix: number;
}

export class SubnetPoolError extends Error {
  override name = 'SubnetPoolError';
}

export function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

export function intToIp(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function parseCidr(text: string): Ipv4Cidr {
  const [address, prefixText, ...rest] = text.trim().split('/');
  const base = ipToInt(address ?? '');
  const prefix = Number(prefixText);
  if (base === undefined || rest.length > 0 || !/^\d{1,2}$/.test(prefixText ?? '') || prefix > 32) {
    throw new SubnetPoolError(`${JSON.stringify(text)} is not an IPv4 CIDR like 10.213.0.0/16`);
  }
  const size = 2 ** (32 - prefix);
  if (base % size !== 0)
    throw new SubnetPoolError(`${text} has host bits set; did you mean ${intToIp(base - (base % size))}/${prefix}?`);
  return { base, prefix };
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return `${intToIp(cidr.base)}/${cidr.prefix}`;
}

/** The configured pool, checked: it must hold at least one bottle subnet. */
export function subnetPool(env: NodeJS.ProcessEnv = process.env): Ipv4Cidr {
  const text = env[SUBNET_POOL_ENV] || DEFAULT_SUBNET_POOL;
  let pool: Ipv4Cidr;
  try {
    pool = parseCidr(text);
  } catch (err) {
    throw new SubnetPoolError(`${SUBNET_POOL_ENV}: ${(err as Error).message}`);
  }
  if (pool.prefix > BOTTLE_SUBNET_PREFIX) {
    throw new SubnetPoolError(
      `${SUBNET_POOL_ENV} ${text} is smaller than one bottle network (/${BOTTLE_SUBNET_PREFIX})`,
    );
  }
  return pool;
}

export function overlaps(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  const aEnd = a.base + 2 ** (32 - a.prefix);
  const bEnd = b.base + 2 ** (32 - b.prefix);
  return a.base < bEnd && b.base < aEnd;
}

/** FNV-1a: a stable spread of names over the pool, so concurrent starts rarely propose the same subnet. */
function spread(seed: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    hash ^= seed.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Every bottle subnet of the pool once, starting at a place that depends on `seed`. */
export function* subnetCandidates(pool: Ipv4Cidr, seed: string): Generator<string> {
  const size = 2 ** (32 - BOTTLE_SUBNET_PREFIX);
  const count = 2 ** (BOTTLE_SUBNET_PREFIX - pool.prefix);
  const first = spread(seed) % count;
  for (let i = 0; i < count; i++) {
    yield formatCidr({ base: pool.base + ((first + i) % count) * size, prefix: BOTTLE_SUBNET_PREFIX });
  }
}

/** Fixed addresses in a bottle subnet: the bridge's (Docker reserves it), the gateway's, the agent's, pipelock's. */
export function subnetAddresses(subnet: string): { bridge: string; gateway: string; agent: string; pipelock: string } {
  const { base } = parseCidr(subnet);
  return {
    bridge: intToIp(base + 1),
    gateway: intToIp(base + 2),
    agent: intToIp(base + 3),
    pipelock: intToIp(base + 4),
  };
}
