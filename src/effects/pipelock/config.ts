import { stringify as stringifyYaml, type ScalarTag, type Tags } from 'yaml';
import type { BottlePlan } from '../../plan/schema.js';
import { parseHostPattern } from '../../shared/host-pattern.js';
import { PermanentEffectError } from '../types.js';
import { PipelockConfigSchema, type PipelockConfig } from './schema.js';

/**
 * pipelock's config for one bottle whose manifest says
 * `"egress": { "proxy": "pipelock" }`.
 *
 * Topology: pipelock replaces the gateway's egress port only. The agent's
 * HTTP(S)_PROXY points at pipelock, which enforces the allowlist for CONNECT
 * and plain HTTP. Credential routes keep going agent -> gateway credential
 * port -> upstream, with the gateway injecting the real secret and dialing
 * out itself; those requests never cross pipelock, so pipelock's header DLP
 * cannot block them and never sees a real secret. What does cross pipelock
 * carries no secret at all (the agent holds only placeholders), so header
 * and body secret scanning stays on, blocking: a credential-shaped value in
 * plain egress is a leak.
 */

/** The port pipelock's own examples use; the agent's HTTP(S)_PROXY points here. */
export const PIPELOCK_LISTEN_PORT = 8888;

/**
 * pipelock's documented default `internal` list: RFC 1918, RFC 4193,
 * loopback, link-local (cloud metadata), CGN and multicast. Written out so
 * the SSRF policy is pinned by our config, not by whichever pipelock release
 * runs it.
 */
export const PIPELOCK_INTERNAL_RANGES: readonly string[] = [
  '0.0.0.0/8',
  '127.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
  '224.0.0.0/4',
  'ff00::/8',
];

/** Headers pipelock scans in `sensitive` header mode (its documented default set). */
export const PIPELOCK_SENSITIVE_HEADERS: readonly string[] = [
  'Authorization',
  'Cookie',
  'X-Api-Key',
  'X-Token',
  'Proxy-Authorization',
  'X-Goog-Api-Key',
];

/** Where pipelock's allowlist is broader than the manifest entry it came from. */
export interface AllowlistWidening {
  /** The manifest/plan entry, e.g. `*.example.com` or `registry.npmjs.org:443`. */
  entry: string;
  kind: 'apex-included' | 'any-port';
  explanation: string;
}

export interface PipelockAllowlist {
  /** Sorted, deduplicated `api_allowlist` entries. */
  entries: string[];
  widenings: AllowlistWidening[];
}

/**
 * Maps the plan's host patterns (defaults included) to pipelock's
 * `api_allowlist`. Exact hosts and IP literals map one to one. Two manifest
 * distinctions have no pipelock equivalent and are widened, never narrowed,
 * so pipelock never refuses a host the plan shows as allowed:
 * - `*.domain` means subdomains only to us; pipelock's `*.domain` also
 *   matches `domain` itself;
 * - `host:port` limits the port to us; pipelock host lists take no port, so
 *   any port on that host passes.
 */
export function pipelockAllowlist(plan: Pick<BottlePlan, 'hosts' | 'default_hosts'>): PipelockAllowlist {
  const entries = new Set<string>();
  const widenings: AllowlistWidening[] = [];
  for (const raw of [...new Set([...plan.hosts, ...plan.default_hosts])]) {
    const pattern = parseHostPattern(raw);
    if (pattern.kind === 'subdomains') {
      entries.add(`*.${pattern.host}`);
      widenings.push({
        entry: raw,
        kind: 'apex-included',
        explanation: `pipelock's "*.${pattern.host}" also allows ${pattern.host} itself`,
      });
    } else {
      entries.add(pattern.host);
    }
    if (pattern.port !== null) {
      widenings.push({
        entry: raw,
        kind: 'any-port',
        explanation:
          `pipelock host lists take no port: every port of ${pattern.host} is allowed, ` + `not only ${pattern.port}`,
      });
    }
  }
  return { entries: [...entries].sort(), widenings };
}

export interface PipelockConfigOptions {
  listenPort: number;
}

/** The config as a checked object; `generatePipelockConfig` writes it as YAML. */
export function buildPipelockConfig(plan: BottlePlan, opts: PipelockConfigOptions): PipelockConfig {
  const config: PipelockConfig = {
    version: 1,
    mode: 'strict',
    enforce: true,
    explain_blocks: false,
    api_allowlist: pipelockAllowlist(plan).entries,
    fetch_proxy: { listen: `0.0.0.0:${opts.listenPort}` },
    forward_proxy: { enabled: true, sni_verification: true },
    request_body_scanning: {
      enabled: true,
      action: 'block',
      scan_headers: true,
      header_mode: 'sensitive',
      sensitive_headers: [...PIPELOCK_SENSITIVE_HEADERS],
    },
    dlp: { scan_env: true, include_defaults: true },
    logging: { format: 'json', output: 'stdout', include_allowed: true, include_blocked: true },
    internal: [...PIPELOCK_INTERNAL_RANGES],
    // Operator-pinned names (extra_hosts) point at deliberately internal
    // addresses, as the gateway's pinned names do; they still need an
    // allowlist entry to be reachable.
    trusted_domains: Object.keys(plan.extra_hosts)
      .map((name) => name.toLowerCase().replace(/\.$/, ''))
      .sort(),
  };
  const checked = PipelockConfigSchema.safeParse(config);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new PermanentEffectError(`pipelock cannot take this bottle's egress settings: ${problems}`);
  }
  return checked.data;
}

/**
 * pipelock's YAML config for the bottle: strict mode, allowlist from
 * plan.hosts, forward proxy on, JSON decision log on stdout.
 */
export function generatePipelockConfig(plan: BottlePlan, opts: PipelockConfigOptions): string {
  const config = buildPipelockConfig(plan, opts);
  // A comment line must stay one line whatever a name holds.
  const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '?');
  const header = [
    `# pipelock config for bottle ${printable(plan.identity)} (agent ${printable(plan.agent)}), ` +
      'generated by claude-bottle.',
    '# Written fresh for every launch; edits are lost. See docs/pipelock.md.',
  ];
  return `${header.join('\n')}\n${pipelockConfigYaml(config)}`;
}

/**
 * The config as YAML, every string (keys too) a double-quoted scalar in JSON's string syntax, which
 * YAML 1.2 reads verbatim: no value (a `*.` wildcard, `yes`, `1`, `null`, `a: b`) can be retyped by
 * the parser on the other side, and a long value is never folded across lines.
 */
export function pipelockConfigYaml(config: PipelockConfig): string {
  return stringifyYaml(config, {
    defaultStringType: 'QUOTE_DOUBLE',
    doubleQuotedAsJSON: true,
    lineWidth: 0,
    customTags: (tags) => tags.map(escapingNonAscii),
  });
}

const YAML_STRING_TAG = 'tag:yaml.org,2002:str';

/**
 * The core schema's string tag, writing YAML escapes for what JSON leaves raw (DEL, NEL, line
 * separators, any non-ASCII), so the bytes on disk never depend on how a parser treats them.
 */
function escapingNonAscii(tag: Tags[number]): Tags[number] {
  if (typeof tag === 'string' || tag.tag !== YAML_STRING_TAG || !tag.stringify) return tag;
  const stringifyQuoted = tag.stringify;
  return { ...tag, stringify: (...args) => escapeNonAscii(stringifyQuoted(...args)) } satisfies ScalarTag;
}

/** Inside a double-quoted scalar a YAML escape stands for the character itself. */
function escapeNonAscii(quoted: string): string {
  return quoted.replace(/[^\x20-\x7e]/gu, (char) => {
    const code = char.codePointAt(0)!;
    return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\U${code.toString(16).padStart(8, '0')}`;
  });
}
