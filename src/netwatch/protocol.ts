import { z } from 'zod';
import type { NetwatchProtocol } from '../shared/netwatch-report.js';
import { subnetAddresses } from '../shared/subnet-pool.js';

/**
 * What the network watch (the `netwatch` sidecar in the agent's network
 * namespace), the gateway and the worker agree on. The watch refuses every
 * packet the agent sends off its internal network and reports each attempt to
 * the gateway as one datagram; the gateway records it as an egress.denied
 * decision (`direct_connection`), so it reaches the event log through the
 * same numbered stream as every other decision. The report datagram itself,
 * which the watch and the gateway both speak, is src/shared/netwatch-report.ts.
 */

/** The gateway's UDP port for the watch's reports, on its internal-network address. */
export const NETWATCH_REPORT_PORT = 3131;
/** The netfilter log group the watch's rule copies refused packets to. */
export const NETWATCH_NFLOG_GROUP = 17;
/** The chain the watch installs in the agent's namespace; its own name, so a restarted watch replaces it. */
export const NETWATCH_CHAIN = 'CLAUDE-BOTTLE-NETWATCH';

/**
 * The address the agent's first program (wait-for-proxy.c) knocks on to learn that the watch records:
 * its own internal network's bridge address, which nobody holds (src/shared/subnet-pool.ts), at the
 * discard port, so the knock is aimed at nothing outside the bottle. The watch answers it, once it
 * records, with an ICMP error no other refusal of its gives (ENETUNREACH for a TCP connect), and does
 * not report it; before that, the knock goes unanswered (no neighbour holds the address).
 */
export const NETWATCH_SENTINEL_PORT = 9;

export interface NetwatchSentinel {
  host: string;
  port: number;
}

export function netwatchSentinel(internalSubnet: string): NetwatchSentinel {
  return { host: subnetAddresses(internalSubnet).bridge, port: NETWATCH_SENTINEL_PORT };
}

export function formatSentinel(sentinel: NetwatchSentinel): string {
  return `${sentinel.host}:${sentinel.port}`;
}
/** The agent's environment variable that names the sentinel when its bottle has a watch. */
export const NETWATCH_SENTINEL_ENV = 'CLAUDE_BOTTLE_NETWATCH_SENTINEL';

/** Where the watch's program lives in the sidecar image (the gateway image). */
export const NETWATCH_PROGRAM = '/opt/gateway/netwatch.cjs';

/** The watch's environment: the addresses the agent may reach, where to report, and the report token. */
export const NETWATCH_ENV = {
  /** Comma-separated IPv4 addresses: the gateway's on the internal network, and pipelock's when it is the hop. */
  allow: 'NETWATCH_ALLOW',
  reportTo: 'NETWATCH_REPORT_TO',
  /** The sentinel it answers, IPV4:PORT (the same value the agent is given). */
  sentinel: 'NETWATCH_SENTINEL',
  token: 'NETWATCH_TOKEN',
} as const;

/** One refused attempt as the watch saw it leave the agent. */
export interface DirectAttempt {
  protocol: NetwatchProtocol;
  /** The destination address (IPv4, dotted). */
  host: string;
  /** The destination port; null for protocols without one. */
  port: number | null;
}

/** The one line the watch prints on stdout once its refusal rules are in place and it is recording. */
export const NetwatchReadyLineSchema = z.object({ t: z.literal('netwatch-ready') }).strict();
export const NETWATCH_READY_LINE = JSON.stringify({ t: 'netwatch-ready' });
