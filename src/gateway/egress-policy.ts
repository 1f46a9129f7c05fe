import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseHostPattern, patternMatches, type HostPattern } from '../shared/host-pattern.js';
import { firstForbidden, type ForbiddenCategory } from './address-policy.js';

/** Name -> addresses. Injectable so tests can prove a denied name is never looked up. */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

export type ProxyMode = 'connect' | 'http';

export type AllowlistVerdict = 'allowlisted' | 'not_in_allowlist' | 'port_not_allowed';

export type ResolveVerdict =
  | { ok: true; address: string; pinned: boolean }
  | { ok: false; why: 'private_address'; address: string; category: ForbiddenCategory }
  | { ok: false; why: 'unresolvable'; detail: string };

/** Lowercase, no trailing dot, no IPv6 brackets: the form patterns and extra_hosts are compared in. */
export function canonicalHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * The two checks every outbound connection passes, in this order: the
 * allowlist (by name, before any DNS traffic) and then the address policy
 * (on every address the name resolves to). The caller connects to the
 * address returned here and never resolves the name again, so a second DNS
 * answer cannot swap in a forbidden address.
 */
export class EgressPolicy {
  /** Grows while the gateway runs: an approved egress request is added in place (allow()). */
  private readonly patterns: HostPattern[];
  private readonly pinnedHosts: Map<string, string>;

  constructor(
    allow: readonly string[],
    extraHosts: Record<string, string>,
    private readonly resolver: Resolver = systemResolver,
  ) {
    this.patterns = allow.map((raw) => parseHostPattern(raw));
    this.pinnedHosts = new Map(Object.entries(extraHosts).map(([name, ip]) => [canonicalHost(name), ip]));
  }

  /** Adds an allowlist entry (an approved egress request); returns false when it was there already. */
  allow(raw: string): boolean {
    const pattern = parseHostPattern(raw);
    const same = (p: HostPattern) => p.kind === pattern.kind && p.host === pattern.host && p.port === pattern.port;
    if (this.patterns.some(same)) return false;
    this.patterns.push(pattern);
    return true;
  }

  checkAllowlist(host: string, port: number, mode: ProxyMode): AllowlistVerdict {
    const h = canonicalHost(host);
    if (this.patterns.some((p) => patternMatches(p, h, port, mode))) return 'allowlisted';
    // Same host under the port the pattern does name: the port is what is refused.
    const hostKnown = this.patterns.some((p) => patternMatches(p, h, p.port ?? defaultPort(mode), mode));
    return hostKnown ? 'port_not_allowed' : 'not_in_allowlist';
  }

  isPinned(host: string): boolean {
    return this.pinnedHosts.has(canonicalHost(host));
  }

  async resolve(host: string): Promise<ResolveVerdict> {
    const h = canonicalHost(host);
    const pinned = this.pinnedHosts.get(h);
    // The operator named this host explicitly; it may point anywhere, including the Docker host.
    if (pinned !== undefined) return { ok: true, address: pinned, pinned: true };
    let addresses: string[];
    if (isIP(h)) {
      addresses = [h];
    } else {
      try {
        addresses = await this.resolver(h);
      } catch (err) {
        return { ok: false, why: 'unresolvable', detail: (err as NodeJS.ErrnoException).code ?? 'lookup failed' };
      }
    }
    if (addresses.length === 0) return { ok: false, why: 'unresolvable', detail: 'no addresses' };
    const forbidden = firstForbidden(addresses);
    if (forbidden) return { ok: false, why: 'private_address', ...forbidden };
    return { ok: true, address: addresses[0], pinned: false };
  }
}

export function defaultPort(mode: ProxyMode): number {
  return mode === 'connect' ? 443 : 80;
}
