import { NETWATCH_CHAIN, NETWATCH_NFLOG_GROUP, type NetwatchSentinel } from './protocol.js';

/** Enough of a packet for its IPv4 header and its transport ports, with room for IP options. */
const NFLOG_COPY_BYTES = 128;

/**
 * How each refused packet reaches the capture: at once, one per message (the kernel's default batches
 * packets for up to a second into a message the capture's buffer cuts short, losing all but the first),
 * and only its headers, which is all an attempt is read from (nflog-capture.ts).
 */
export const NFLOG_DELIVERY = [
  ...['--nflog-group', String(NETWATCH_NFLOG_GROUP)],
  ...['--nflog-threshold', '1'],
  ...['--nflog-size', String(NFLOG_COPY_BYTES)],
];

/**
 * The refusal rules the watch installs in the agent's network namespace, as
 * iptables argument lists run in order. The agent may send only on loopback
 * and to its egress hops on the internal network (the gateway, and pipelock
 * when it is the hop), and answer TCP connections made to it (published ports); anything
 * else, another address of that network too, is
 * copied to the watch's log group and refused on the spot: a TCP reset or an
 * ICMP error, so the agent's connect fails at once instead of waiting on a
 * next hop that never answers. Docker's own rules for an internal network
 * would drop such a packet on the bridge anyway; these make the refusal
 * visible. The rules live in a chain of their own, rebuilt from empty, so a
 * restarted watch does not stack a second copy.
 */
export function refusalRules(allowed: readonly string[]): string[][] {
  const chain = NETWATCH_CHAIN;
  return [
    ['-w', '-F', chain],
    ['-w', '-A', chain, '-o', 'lo', '-j', 'RETURN'],
    ...allowed.map((address) => ['-w', '-A', chain, '-d', `${address}/32`, '-j', 'RETURN']),
    // Answers on TCP connections made to the agent (a published port's forwarder): replies only, never a new one.
    ['-w', '-A', chain, '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'ESTABLISHED', '--ctdir', 'REPLY', '-j', 'RETURN'],
    ['-w', '-A', chain, '-j', 'NFLOG', ...NFLOG_DELIVERY],
    ['-w', '-A', chain, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'],
    ['-w', '-A', chain, '-j', 'REJECT', '--reject-with', 'icmp-net-unreachable'],
  ];
}

/**
 * The sentinel's answer (protocol.ts netwatchSentinel), put first in the chain once the capture
 * listens: from then on the agent may run, since every other refused packet is recorded.
 */
export function sentinelRule({ host, port }: NetwatchSentinel): string[] {
  return [
    ...['-w', '-I', NETWATCH_CHAIN, '1', '-d', `${host}/32`, '-p', 'tcp', '--dport', String(port)],
    ...['-j', 'REJECT', '--reject-with', 'icmp-net-prohibited'],
  ];
}

/** Creates the chain; fails harmlessly when a restarted watch finds it there. */
export const CHAIN_CREATE = ['-w', '-N', NETWATCH_CHAIN];

/** Hooks the chain into OUTPUT unless it already is (`-C` first, then `-I`). */
export const HOOK_CHECK = ['-w', '-C', 'OUTPUT', '-j', NETWATCH_CHAIN];
export const HOOK_INSERT = ['-w', '-I', 'OUTPUT', '1', '-j', NETWATCH_CHAIN];

/** The capture of the refused packets: raw pcap on stdout, one record per packet, unbuffered. */
export function captureArguments(): string[] {
  return ['-Z', 'nobody', '-U', '-n', '-s', '512', '-w', '-', '-i', `nflog:${NETWATCH_NFLOG_GROUP}`];
}
