import type Docker from 'dockerode';
import { bottleLabels, resourceNames } from '../../shared/names.js';
import { formatCidr, subnetAddresses, subnetCandidates, type Ipv4Cidr } from '../../shared/subnet-pool.js';
import { PermanentEffectError } from '../types.js';
import { statusOf } from './client.js';

/**
 * The two per-bottle networks, each on a small subnet of its own from the
 * tool's pool. The agent sits only on `internal` (Docker `Internal: true`:
 * no forwarding off the bridge, and a bridge without a host address, so the
 * host itself is out of reach too); the gateway sits on both and is the
 * agent's one way out through `egress`, a normal bridge.
 */
export interface BottleNetwork {
  id: string;
  name: string;
  subnet: string;
}

export interface BottleNetworks {
  internal: BottleNetwork;
  egress: BottleNetwork;
}

export const ADDRESSLESS_BRIDGE_OPTION = 'com.docker.network.bridge.inhibit_ipv4';

/** Whether a network's driver options give its bridge no host address (networks made by earlier versions lack it). */
export function isHostAddressless(options: Record<string, string> | undefined): boolean {
  return options?.[ADDRESSLESS_BRIDGE_OPTION] === 'true';
}

interface NetworkInspect {
  Id: string;
  Name: string;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
}

function describeNetwork(info: NetworkInspect): BottleNetwork {
  const ipv4 = (info.IPAM?.Config ?? []).find((c) => c.Subnet && !c.Subnet.includes(':'));
  if (!ipv4?.Subnet) throw new Error(`network ${info.Name} has no IPv4 subnet`);
  return { id: info.Id, name: info.Name, subnet: ipv4.Subnet };
}

/** Inspect by name; undefined when absent. */
export async function inspectNetwork(docker: Docker, name: string): Promise<BottleNetwork | undefined> {
  try {
    return describeNetwork(await docker.getNetwork(name).inspect());
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Docker's answer when a subnet overlaps one of its networks (or its host routes, for some versions). */
export function isSubnetTaken(err: unknown): boolean {
  return /overlap/i.test(err instanceof Error ? err.message : String(err));
}

export interface NetworkRequest {
  name: string;
  internal: boolean;
  labels: Record<string, string>;
  pool: Ipv4Cidr;
}

/**
 * The network under its deterministic name: the existing one (a retried
 * effect), or a new one on the first candidate subnet the daemon accepts.
 * The daemon refuses a subnet that overlaps one of its networks, which is
 * what keeps two concurrent starts off the same subnet.
 */
export async function ensureNetwork(docker: Docker, request: NetworkRequest): Promise<BottleNetwork> {
  const existing = await inspectNetwork(docker, request.name);
  if (existing) return existing;
  let tried = 0;
  for (const subnet of subnetCandidates(request.pool, request.name)) {
    tried++;
    const { bridge } = subnetAddresses(subnet);
    try {
      await docker.createNetwork({
        Name: request.name,
        Driver: 'bridge',
        Internal: request.internal,
        CheckDuplicate: true,
        Labels: request.labels,
        IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: bridge }] },
        ...(request.internal ? { Options: { [ADDRESSLESS_BRIDGE_OPTION]: 'true' } } : {}),
      });
    } catch (err) {
      if (isSubnetTaken(err)) continue;
      // 409: a concurrent attempt of this same effect created it first.
      if (statusOf(err) !== 409) throw err;
    }
    const created = await inspectNetwork(docker, request.name);
    if (!created) throw new Error(`network ${request.name} vanished right after it was created`);
    return created;
  }
  throw new PermanentEffectError(
    `no free subnet left in the bottle network pool ${formatCidr(request.pool)} (${tried} tried): ` +
      'remove bottles you no longer need (`bottle cleanup`) or widen CLAUDE_BOTTLE_SUBNET_POOL',
  );
}

/** Idempotent: inspect before create, so a retried effect reuses what the first attempt made. */
export async function ensureBottleNetworks(
  docker: Docker,
  identity: string,
  agent: string,
  pool: Ipv4Cidr,
): Promise<BottleNetworks> {
  const names = resourceNames(identity);
  // Independent of each other: created side by side.
  const [internal, egress] = await Promise.all([
    ensureNetwork(docker, {
      name: names.internalNetwork,
      internal: true,
      labels: bottleLabels(identity, agent, 'internal-network'),
      pool,
    }),
    ensureNetwork(docker, {
      name: names.egressNetwork,
      internal: false,
      labels: bottleLabels(identity, agent, 'egress-network'),
      pool,
    }),
  ]);
  return { internal, egress };
}
