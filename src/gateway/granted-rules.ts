import type { GrantRules } from './protocol.js';
import { compileRules, type CompiledRules, type EntryRules, type RuleVerdict } from './path-rules.js';

/**
 * An allowlist entry's rules widened by method/path grants (`bottle-request
 * egress HOST --method M --path GLOB`, approved by the operator). A grant
 * names what the entry refused: its methods stand in for the entry's methods
 * and its paths for the entry's paths, the dimension it leaves out stays the
 * entry's. A request passes when the entry's rules or any grant admit it. A
 * path the entry finds ambiguous stays refused: no grant makes it readable.
 */
export class GrantedRules implements CompiledRules {
  private readonly base: CompiledRules;
  private readonly grants: CompiledRules[] = [];

  constructor(readonly rules: EntryRules) {
    this.base = compileRules(rules);
  }

  /** Adds a grant; returns false when the same one is already there. */
  grant(scope: GrantRules): boolean {
    const widened: EntryRules = {
      host: this.rules.host,
      methods: scope.methods ?? this.rules.methods,
      paths: scope.paths ?? this.rules.paths,
    };
    const same = (r: EntryRules) => sameList(r.methods, widened.methods) && sameList(r.paths, widened.paths);
    if (this.grants.some((g) => same(g.rules))) return false;
    this.grants.push(compileRules(widened));
    return true;
  }

  check(method: string, target: string): RuleVerdict {
    const verdict = this.base.check(method, target);
    if (verdict.ok || verdict.reason === 'path_ambiguous') return verdict;
    for (const grant of this.grants) {
      const granted = grant.check(method, target);
      if (granted.ok) return granted;
    }
    return verdict;
  }
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return (a ?? []).join('\n') === (b ?? []).join('\n') && (a === undefined) === (b === undefined);
}
