import { parseHostPattern, patternMatches } from '../shared/host-pattern.js';
import type { EgressEntry } from './schema.js';

/** A method/path grant approved in an earlier run, as a resume reads it from the log. */
export interface ApprovedGrant {
  host: string;
  port: number;
  methods?: string[];
  paths?: string[];
}

/**
 * The plan's egress entries with the grants approved in earlier runs attached
 * to the entry that admits each grant's host (an exact entry before a
 * wildcard), as the gateway applied them live. A grant whose host no entry
 * with rules admits any more (the manifest changed) is left out.
 */
export function withApprovedGrants(
  entries: readonly EgressEntry[] | undefined,
  grants: readonly ApprovedGrant[],
): EgressEntry[] | undefined {
  if (entries === undefined || grants.length === 0) return entries?.slice();
  const patterns = entries.map((entry) => parseHostPattern(entry.host));
  const result = entries.map((entry) => ({ ...entry, ...(entry.grants ? { grants: [...entry.grants] } : {}) }));
  for (const grant of grants) {
    const admits = (i: number) =>
      patternMatches(patterns[i], grant.host, grant.port, 'connect') ||
      patternMatches(patterns[i], grant.host, grant.port, 'http');
    const indices = result.map((_, i) => i).filter(admits);
    const index = indices.find((i) => patterns[i].kind === 'exact') ?? indices[0];
    if (index === undefined) continue;
    const entry = result[index];
    if (!entry.inspect || (entry.methods === undefined && entry.paths === undefined)) continue;
    const scope = {
      ...(grant.methods !== undefined ? { methods: grant.methods } : {}),
      ...(grant.paths !== undefined ? { paths: grant.paths } : {}),
    };
    const same = (g: typeof scope) => JSON.stringify(g) === JSON.stringify(scope);
    if (!(entry.grants ?? []).some(same)) entry.grants = [...(entry.grants ?? []), scope];
  }
  return result;
}
