import type Docker from 'dockerode';
import { bottleLabels, resourceNames } from '../../shared/names.js';
import { PermanentEffectError } from '../types.js';
import { statusOf } from './client.js';

/**
 * The two per-bottle networks. The agent sits only on `internal`
 * (Docker `Internal: true`: no forwarding off the bridge, and a bridge without
 * a host address, so the host itself is out of reach too); the gateway sits on both
 * and is the agent's one way out through `egress`, a normal bridge.
 */
export interface BottleNetwork {
  id: string;
  name: string;
  /** Host-side bridge interface, `br-<first 12 of the id>` unless the network names its own. */
  bridge: string;
  /** The bridge's gateway address as Docker's IPAM reports it (the host's, unless the bridge is address-less). */
  gateway: string;
  subnet: string;
  /**
   * The bridge holds no IPv4 address on the host (Docker's `inhibit_ipv4`), so
   * the default route Docker still gives containers on an internal network
   * leads nowhere: nobody answers for its gateway address, and the host's other
   * addresses are reachable only through that route. Networks made by earlier
   * versions lack this and rely on the iptables host guard instead.
   */
  hostAddressless: boolean;
}

export interface BottleNetworks {
  internal: BottleNetwork;
  egress: BottleNetwork;
}

const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
export const ADDRESSLESS_BRIDGE_OPTION = 'com.docker.network.bridge.inhibit_ipv4';

/** Whether a network's driver options give its bridge no host address (see BottleNetwork.hostAddressless). */
export function isHostAddressless(options: Record<string, string> | undefined): boolean {
  return options?.[ADDRESSLESS_BRIDGE_OPTION] === 'true';
}

interface NetworkInspect {
  Id: string;
  Name: string;
  Options?: Record<string, string>;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
}

export function describeNetwork(info: NetworkInspect): BottleNetwork {
  const ipv4 = (info.IPAM?.Config ?? []).find((c) => c.Subnet && !c.Subnet.includes(':'));
  if (!ipv4?.Gateway || !ipv4.Subnet) throw new Error(`network ${info.Name} has no IPv4 subnet/gateway`);
  return {
    id: info.Id,
    name: info.Name,
    bridge: info.Options?.[BRIDGE_NAME_OPTION] ?? `br-${info.Id.slice(0, 12)}`,
    gateway: ipv4.Gateway,
    subnet: ipv4.Subnet,
    hostAddressless: isHostAddressless(info.Options),
  };
}

/**
 * The address Docker's IPAM hands the first container that joins a fresh
 * network: the one right after the bridge's gateway address (allocation is
 * sequential). A guess to start work early with; callers check it.
 */
export function firstContainerAddress(network: Pick<BottleNetwork, 'gateway' | 'subnet'>): string | undefined {
  const toInt = (ip: string) => {
    const parts = ip.split('.').map(Number);
    if (parts.length !== 4 || !parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)) return undefined;
    return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
  };
  const [base, prefixText] = network.subnet.split('/');
  const gateway = toInt(network.gateway);
  const start = toInt(base);
  const prefix = Number(prefixText);
  if (gateway === undefined || start === undefined || !Number.isInteger(prefix) || prefix < 1 || prefix > 30) return undefined;
  const size = 2 ** (32 - prefix);
  const next = gateway + 1;
  // Inside the subnet, and not its broadcast address.
  if (next <= start || next >= start + size - 1) return undefined;
  return [next >>> 24, (next >>> 16) & 255, (next >>> 8) & 255, next & 255].join('.');
}

/** Inspect by name; undefined when absent. */
export async function inspectNetwork(docker: Docker, name: string): Promise<BottleNetwork | undefined> {
  try {
    return describeNetwork((await docker.getNetwork(name).inspect()) as NetworkInspect);
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

async function ensureNetwork(docker: Docker, name: string, internal: boolean, labels: Record<string, string>): Promise<BottleNetwork> {
  const existing = await inspectNetwork(docker, name);
  if (existing) return existing;
  try {
    // CheckDuplicate: Docker otherwise happily creates two networks with one name,
    // and a retried effect would then see an ambiguous name.
    await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: internal, CheckDuplicate: true, Labels: labels, ...(internal ? { Options: { [ADDRESSLESS_BRIDGE_OPTION]: 'true' } } : {}) });
  } catch (err) {
    if (isAddressPoolExhausted(err)) {
      // Retrying does not help until some network goes away: say so at once, with the fix.
      throw new PermanentEffectError(
        'Docker has no free address pool left for a new network (each bottle uses 2): remove networks you no longer need (`bottle cleanup`, `docker network prune`) or give the daemon more with "default-address-pools" in /etc/docker/daemon.json',
        String(err),
      );
    }
    if (statusOf(err) !== 409) throw err; // 409: a concurrent attempt created it first
  }
  const created = await inspectNetwork(docker, name);
  if (!created) throw new Error(`network ${name} vanished right after it was created`);
  return created;
}

/** Idempotent: inspect before create, so a retried effect reuses what the first attempt made. */
export async function ensureBottleNetworks(docker: Docker, identity: string, agent: string): Promise<BottleNetworks> {
  const names = resourceNames(identity);
  // Independent of each other: created side by side (each create is a daemon round trip of ~100 ms).
  const [internal, egress] = await Promise.all([
    ensureNetwork(docker, names.internalNetwork, true, bottleLabels(identity, agent, 'internal-network')),
    ensureNetwork(docker, names.egressNetwork, false, bottleLabels(identity, agent, 'egress-network')),
  ]);
  return { internal, egress };
}

/** Docker 20.10 answers 404 ("driver not found - could not find an available, non-overlapping IPv4 address pool ..."). */
export function isAddressPoolExhausted(err: unknown): boolean {
  return /non-overlapping IPv4 address pool/i.test(err instanceof Error ? err.message : String(err));
}
