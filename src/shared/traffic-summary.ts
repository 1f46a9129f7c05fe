import { z } from 'zod';

/**
 * The per-host traffic counters the gateway reports in its summary lines
 * (gateway/protocol.ts) and the worker records as `egress.summary` events.
 * Counters run from the gateway's start, so a later summary of a host
 * replaces an earlier one of the same gateway run.
 */

/** Most hosts one summary carries; hosts changed beyond it go in the next one. */
export const SUMMARY_MAX_HOSTS = 32;
/** Most methods kept per host (the first ones seen). */
export const SUMMARY_MAX_METHODS = 8;
/** Requests refused before their host could be read are counted under this name (no host is spelled so). */
export const UNKNOWN_HOST = '(unknown)';
/** Past the gateway's host limit, further hosts share this entry, so a flood of names keeps memory bounded. */
export const OTHER_HOSTS = '(other hosts)';

export const HostTrafficSchema = z.object({
  host: z.string().min(1).max(300),
  allowed: z.number().int().nonnegative(),
  denied: z.number().int().nonnegative(),
  /** Bytes from the agent: a tunnel's bytes, or the bodies of proxied requests. */
  bytes_up: z.number().int().nonnegative(),
  /** Bytes towards the agent, counted the same way. */
  bytes_down: z.number().int().nonnegative(),
  methods: z.array(z.string().min(1).max(32)).max(SUMMARY_MAX_METHODS),
  last_seen: z.string().datetime({ offset: true }),
});
export type HostTraffic = z.infer<typeof HostTrafficSchema>;

export const TrafficSummarySchema = z.object({
  /** The gateway's line number, in the same sequence as its decisions. */
  n: z.number().int().nonnegative(),
  /** Hosts whose counters changed since the previous summary. */
  hosts: z.array(HostTrafficSchema).max(SUMMARY_MAX_HOSTS),
  /** Changed hosts left for the next summary. */
  pending: z.number().int().nonnegative(),
});
export type TrafficSummary = z.infer<typeof TrafficSummarySchema>;
