import { canonicalPath, withoutParameters } from './canonical-path.js';
import type { EgressDetail } from './protocol.js';

/**
 * Method and path rules of one allowlist entry. `methods` lists the methods
 * allowed (absent: all). `paths` are globs on the canonical path
 * (canonical-path.ts): `*` is any run of characters inside one segment, `**`
 * any run of whole segments (`/org/**` is `/org` and everything below it);
 * a glob starting with `!` excludes. A path passes when it matches some
 * positive glob (or there is none) and no exclusion.
 *
 * A path is refused as ambiguous when the canonicaliser refuses it, or when
 * its verdict would change if the upstream stripped `;parameters` (so
 * `/org/repo/git-receive-pack;x` cannot slip past an exclusion of `git-receive-pack`).
 * The path that passes is the one forwarded.
 */
export interface EntryRules {
  /** The allowlist entry's host pattern, as the manifest wrote it (normalised). */
  host: string;
  methods?: readonly string[];
  paths?: readonly string[];
}

export type RuleVerdict =
  | { ok: true; /** The target to forward: canonical when paths are ruled, as sent otherwise. */ target: string }
  | { ok: false; reason: 'method_rule' | 'path_rule' | 'path_ambiguous'; detail: EgressDetail; why: string };

export interface CompiledRules {
  rules: EntryRules;
  check(method: string, target: string): RuleVerdict;
}

export function compileRules(rules: EntryRules): CompiledRules {
  const methods = rules.methods?.map((m) => m.toUpperCase());
  const globs = (rules.paths ?? []).map((text) => {
    const negated = text.startsWith('!');
    return { text, negated, pattern: globToRegExp(negated ? text.slice(1) : text) };
  });
  const positives = globs.filter((g) => !g.negated);
  const exclusions = globs.filter((g) => g.negated);
  const methodText = methods ? `methods ${methods.join(',')}` : '';
  const pathText = `paths ${globs.map((g) => g.text).join(',')}`;

  const passes = (path: string): boolean =>
    (positives.length === 0 || positives.some((g) => g.pattern.test(path))) &&
    !exclusions.some((g) => g.pattern.test(path));

  return {
    rules,
    check(method, target) {
      if (methods && !methods.includes(method.toUpperCase())) {
        return refusal('method_rule', `${rules.host} ${methodText}`, `${method} is not among ${methods.join(', ')}`);
      }
      if (globs.length === 0) return { ok: true, target };
      const canonical = canonicalPath(target);
      if (!canonical.ok) return refusal('path_ambiguous', `${rules.host} ${pathText}`, canonical.why);
      const verdict = passes(canonical.path);
      if (verdict !== passes(withoutParameters(canonical.path)))
        return refusal('path_ambiguous', `${rules.host} ${pathText}`, 'the verdict depends on ";" parameters');
      if (!verdict) return refusal('path_rule', `${rules.host} ${pathText}`, 'the path matches no allowed glob');
      return { ok: true, target: `${canonical.path}${canonical.query}` };
    },
  };
}

function refusal(reason: 'method_rule' | 'path_rule' | 'path_ambiguous', rule: string, why: string): RuleVerdict {
  const ruleClass = reason === 'method_rule' ? 'method_rule' : 'path_rule';
  return { ok: false, reason, detail: { class: ruleClass, rule: rule.slice(0, 200), where: 'url' }, why };
}

/** Anchored: `**` spans segments (a trailing `/**` also matches the folder itself), `*` stays in one. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') {
      const slashBefore = source.endsWith('/');
      i++;
      if (slashBefore && (i === glob.length - 1 || glob[i + 1] === '/')) {
        // "/**" at the end or "/**/" inside: zero or more whole segments.
        source = source.slice(0, -1);
        source += glob[i + 1] === '/' ? '(?:/[^]*)?/' : '(?:/[^]*)?';
        if (glob[i + 1] === '/') i++;
      } else {
        source += '[^]*';
      }
    } else if (ch === '*') {
      source += '[^/]*';
    } else {
      source += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
