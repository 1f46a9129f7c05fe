import { isIP } from 'node:net';
import { parseHostPattern, patternMatches, type HostPattern } from '../shared/host-pattern.js';
import type { GatewayEntry } from './config.js';
import type { ProxyMode } from './egress-policy.js';
import { GrantedRules } from './granted-rules.js';
import type { CompiledRules } from './path-rules.js';
import type { GrantRules } from './protocol.js';

/**
 * What the gateway does beyond admitting a connection to an allowlisted
 * host: whether it inspects it, and the entry's method and path rules.
 * The most specific entry wins (an exact host before a wildcard), so
 * `{"host": "api.example.com", "inspect": false}` can carve a pinned client
 * out of an inspected `*.example.com`.
 *
 * Inspection needs a name the CA can vouch for: an IP address entry is never
 * inspected (the CA excludes every address), nor is a host granted live
 * (bottle-request egress): the agent already trusts a CA whose name
 * constraints were fixed at launch, so such a host is tunnelled end to end
 * with its SNI checked, and its decisions say "not inspected".
 */
export interface EntryTreatment {
  /** The entry's host pattern as written in the allowlist. */
  entry: string;
  inspect: boolean;
  rules: CompiledRules | undefined;
}

interface Entry extends EntryTreatment {
  pattern: HostPattern;
  rules: GrantedRules | undefined;
}

export class EgressEntries {
  private readonly entries: Entry[];

  constructor(entries: readonly GatewayEntry[]) {
    this.entries = entries.map((e) => {
      const pattern = parseHostPattern(e.host);
      const hasRules = e.methods !== undefined || e.paths !== undefined;
      const rules = hasRules ? new GrantedRules({ host: e.host, methods: e.methods, paths: e.paths }) : undefined;
      for (const grant of e.grants ?? []) rules?.grant(grant);
      return { entry: e.host, pattern, inspect: e.inspect && !isIP(pattern.host), rules };
    });
  }

  /**
   * The inspected entry with rules a method/path grant for `host`:`port` widens, or why there is none
   * (a grant needs rules to widen and inspection to enforce it).
   */
  grantable(host: string, port: number): { entry: string } | { problem: string } {
    const entry = this.find(host, port);
    if (!entry) return { problem: `${host}:${port} is not on the allowlist; ask for the host without --method/--path` };
    if (!entry.inspect) return { problem: `${entry.entry} is not inspected, so no method or path rule applies to it` };
    if (!entry.rules) return { problem: `${entry.entry} has no method or path rules: every request to it passes` };
    return { entry: entry.entry };
  }

  /** Applies an approved method/path grant live; throws when no inspected entry with rules admits the host. */
  grant(host: string, port: number, scope: GrantRules): boolean {
    const found = this.grantable(host, port);
    if ('problem' in found) throw new Error(found.problem);
    return this.find(host, port)!.rules!.grant(scope);
  }

  private find(host: string, port: number): Entry | undefined {
    const matches = (e: Entry) =>
      patternMatches(e.pattern, host, port, 'connect') || patternMatches(e.pattern, host, port, 'http');
    const matching = this.entries.filter(matches);
    return matching.find((e) => e.pattern.kind === 'exact') ?? matching[0];
  }

  /** The treatment of an allowlisted host, or undefined when no entry speaks for it (not inspected). */
  lookup(host: string, port: number, mode: ProxyMode): EntryTreatment | undefined {
    const matching = this.entries.filter((e) => patternMatches(e.pattern, host, port, mode));
    return matching.find((e) => e.pattern.kind === 'exact') ?? matching[0];
  }

  /** The DNS subtrees the interception CA must be valid for: every inspected entry's domain. */
  inspectedNames(): string[] {
    return [...new Set(this.entries.filter((e) => e.inspect).map((e) => e.pattern.host))];
  }
}
