import { isIP } from 'node:net';
import { parseHostPattern, patternMatches, type HostPattern } from '../shared/host-pattern.js';
import type { GatewayEntry } from './config.js';
import type { ProxyMode } from './egress-policy.js';
import { compileRules, type CompiledRules } from './path-rules.js';

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
}

export class EgressEntries {
  private readonly entries: Entry[];

  constructor(entries: readonly GatewayEntry[]) {
    this.entries = entries.map((e) => {
      const pattern = parseHostPattern(e.host);
      const hasRules = e.methods !== undefined || e.paths !== undefined;
      return {
        entry: e.host,
        pattern,
        inspect: e.inspect && !isIP(pattern.host),
        rules: hasRules ? compileRules({ host: e.host, methods: e.methods, paths: e.paths }) : undefined,
      };
    });
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
