import { canonicalPath } from './canonical-path.js';
import type { RuleVerdict } from './path-rules.js';

/**
 * The command an agent refused by a method or path rule runs to ask the
 * operator for exactly what was refused: the method, or the canonical path
 * (the form the rule was checked against). Undefined for refusals no grant
 * can lift (an ambiguous path is refused whatever the rules say).
 */
export function grantHint(
  verdict: Extract<RuleVerdict, { ok: false }>,
  exchange: { host: string; port: number; method: string; target: string },
): string | undefined {
  const where = exchange.port === 443 ? exchange.host : `${exchange.host}:${exchange.port}`;
  let scope: string;
  if (verdict.reason === 'method_rule') scope = `--method ${exchange.method}`;
  else if (verdict.reason === 'path_rule') {
    const canonical = canonicalPath(exchange.target);
    if (!canonical.ok || !/^\/[\x21-\x7e]*$/.test(canonical.path) || /[*'?#\\]/.test(canonical.path)) return undefined;
    scope = `--path '${canonical.path}'`;
  } else return undefined;
  return `bottle-request egress ${where} ${scope} --reason 'why the task needs it'`;
}
