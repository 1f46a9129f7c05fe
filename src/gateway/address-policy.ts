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
  { network: 'ff00::', prefix: 8, category: 'multicast' },
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
    text = `${text.slice(0, dotted.index)}${((octets[0] << 8) | octets[1]).toString(16)}:${((octets[2] << 8) | octets[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  return groups.map((g) => parseInt(g, 16));
}

/**
 * IPv4 addresses smuggled inside IPv6: IPv4-mapped (::ffff:a.b.c.d) and the
 * deprecated IPv4-compatible form (::a.b.c.d). Both reach the IPv4 address on
 * dual-stack hosts, so they are judged as that address.
 */
function embeddedIPv4(address: string): string | null {
  const g = ipv6Groups(address);
  const firstFiveZero = g.slice(0, 5).every((x) => x === 0);
  const mapped = firstFiveZero && g[5] === 0xffff;
  const compatible = firstFiveZero && g[5] === 0 && (g[6] !== 0 || g[7] > 1);
  if (!mapped && !compatible) return null;
  return [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff].join('.');
}

export function classifyAddress(rawAddress: string): AddressVerdict {
  const address = rawAddress.split('%')[0]; // drop an IPv6 zone id ("fe80::1%eth0")
  const family = isIP(address);
  if (family === 4) return firstMatch(IPV4_LISTS, address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(address);
    if (v4 !== null) return firstMatch(IPV4_LISTS, v4, 'ipv4');
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
