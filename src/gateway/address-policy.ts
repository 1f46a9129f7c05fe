import { BlockList, isIP } from 'node:net';

/**
 * Addresses an agent must never reach through the gateway even when the name
 * that resolved to them is allowlisted: a public name can be pointed at the
 * host, the cloud metadata service or the operator's LAN at any time.
 */
export type ForbiddenCategory =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cloud_metadata'
  | 'cgnat'
  | 'multicast'
  | 'unique_local'
  | 'site_local'
  | 'reserved'
  | 'not_an_ip';

export type AddressVerdict = { forbidden: false } | { forbidden: true; category: ForbiddenCategory };

interface Range {
  network: string;
  prefix: number;
  category: ForbiddenCategory;
}

// Most specific first: metadata sits inside link-local and must be named as such.
const IPV4_RANGES: Range[] = [
  { network: '169.254.169.254', prefix: 32, category: 'cloud_metadata' },
  { network: '0.0.0.0', prefix: 8, category: 'unspecified' },
  { network: '127.0.0.0', prefix: 8, category: 'loopback' },
  { network: '10.0.0.0', prefix: 8, category: 'private' },
  { network: '172.16.0.0', prefix: 12, category: 'private' },
  { network: '192.168.0.0', prefix: 16, category: 'private' },
  { network: '169.254.0.0', prefix: 16, category: 'link_local' },
  { network: '100.64.0.0', prefix: 10, category: 'cgnat' },
  { network: '224.0.0.0', prefix: 4, category: 'multicast' },
  { network: '192.0.0.0', prefix: 24, category: 'reserved' },
  { network: '198.18.0.0', prefix: 15, category: 'reserved' },
  { network: '240.0.0.0', prefix: 4, category: 'reserved' },
];

const IPV6_RANGES: Range[] = [
  { network: 'fd00:ec2::254', prefix: 128, category: 'cloud_metadata' },
  { network: '::', prefix: 128, category: 'unspecified' },
  { network: '::1', prefix: 128, category: 'loopback' },
  { network: 'fe80::', prefix: 10, category: 'link_local' },
  { network: 'fc00::', prefix: 7, category: 'unique_local' },
  // Deprecated (RFC 3879) but still routed inside some sites as their private space.
  { network: 'fec0::', prefix: 10, category: 'site_local' },
  { network: 'ff00::', prefix: 8, category: 'multicast' },
  // Local-use NAT64 (RFC 8215): the IPv4 address sits at an operator-chosen offset, so none can be vetted.
  { network: '64:ff9b:1::', prefix: 48, category: 'reserved' },
];

function buildLists(ranges: Range[], type: 'ipv4' | 'ipv6'): Array<{ list: BlockList; category: ForbiddenCategory }> {
  return ranges.map((range) => {
    const list = new BlockList();
    list.addSubnet(range.network, range.prefix, type);
    return { list, category: range.category };
  });
}

const IPV4_LISTS = buildLists(IPV4_RANGES, 'ipv4');
const IPV6_LISTS = buildLists(IPV6_RANGES, 'ipv6');

/** Expands any textual IPv6 address (including a dotted IPv4 tail) to eight 16-bit groups. */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const octets = dotted[1].split('.').map(Number);
    const high = ((octets[0] << 8) | octets[1]).toString(16);
    const low = ((octets[2] << 8) | octets[3]).toString(16);
    text = `${text.slice(0, dotted.index)}${high}:${low}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  return groups.map((g) => parseInt(g, 16));
}

/**
 * IPv4 addresses carried inside IPv6, each judged as that IPv4 address
 * because a translator or relay delivers the packet to it:
 * - IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible form
 *   (::a.b.c.d), which dual-stack hosts treat as the IPv4 address;
 * - NAT64 well-known prefix (64:ff9b::a.b.c.d, RFC 6052);
 * - 6to4 (2002:aabb:ccdd::/48, RFC 3056);
 * - Teredo (2001:0::/32, RFC 4380): the client's address, bit-inverted, in
 *   the last 32 bits; its server's address in bits 32-63.
 */
function embeddedIPv4s(address: string): string[] {
  const g = ipv6Groups(address);
  const dotted = (high: number, low: number) => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  const firstFiveZero = g.slice(0, 5).every((x) => x === 0);
  if (firstFiveZero && g[5] === 0xffff) return [dotted(g[6], g[7])];
  if (firstFiveZero && g[5] === 0 && (g[6] !== 0 || g[7] > 1)) return [dotted(g[6], g[7])];
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return [dotted(g[6], g[7])];
  if (g[0] === 0x2002) return [dotted(g[1], g[2])];
  if (g[0] === 0x2001 && g[1] === 0) return [dotted(g[2], g[3]), dotted(g[6] ^ 0xffff, g[7] ^ 0xffff)];
  return [];
}

export function classifyAddress(rawAddress: string): AddressVerdict {
  const address = rawAddress.split('%')[0]; // drop an IPv6 zone id ("fe80::1%eth0")
  const family = isIP(address);
  if (family === 4) return firstMatch(IPV4_LISTS, address, 'ipv4');
  if (family === 6) {
    for (const v4 of embeddedIPv4s(address)) {
      const verdict = firstMatch(IPV4_LISTS, v4, 'ipv4');
      if (verdict.forbidden) return verdict;
    }
    return firstMatch(IPV6_LISTS, address, 'ipv6');
  }
  return { forbidden: true, category: 'not_an_ip' };
}

function firstMatch(
  lists: Array<{ list: BlockList; category: ForbiddenCategory }>,
  address: string,
  type: 'ipv4' | 'ipv6',
): AddressVerdict {
  for (const { list, category } of lists) {
    if (list.check(address, type)) return { forbidden: true, category };
  }
  return { forbidden: false };
}

/** A name is only as safe as the worst address it resolves to: one bad answer refuses the lot. */
export function firstForbidden(addresses: readonly string[]): { address: string; category: ForbiddenCategory } | null {
  for (const address of addresses) {
    const verdict = classifyAddress(address);
    if (verdict.forbidden) return { address, category: verdict.category };
  }
  return null;
}
