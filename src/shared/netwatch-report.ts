import { z } from 'zod';

/**
 * The datagram the network watch (src/netwatch) sends for each refused attempt
 * and the gateway (src/gateway) records as an egress.denied decision: the one
 * contract both programs speak, kept here so neither imports the other.
 */

/**
 * Direct connections recorded per minute (and as a burst): the gateway records no more, and the
 * watch sends no more, so a connect flood costs neither of them more than the log takes.
 */
export const DIRECT_RECORDS_PER_MINUTE = 60;

export const NETWATCH_PROTOCOLS = ['tcp', 'udp', 'icmp', 'other'] as const;
export type NetwatchProtocol = (typeof NETWATCH_PROTOCOLS)[number];

/**
 * A report datagram. The token proves it came from the watch: the agent
 * shares the watch's network namespace and address, but not its environment.
 */
export const NetwatchReportSchema = z
  .object({
    token: z.string().min(1).max(128),
    protocol: z.enum(NETWATCH_PROTOCOLS),
    host: z.string().ip({ version: 'v4' }),
    port: z.number().int().min(0).max(65535).nullable(),
  })
  .strict();
export type NetwatchReport = z.infer<typeof NetwatchReportSchema>;
