import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  buildPipelockConfig,
  generatePipelockConfig,
  PIPELOCK_INTERNAL_RANGES,
  PIPELOCK_LISTEN_PORT,
  pipelockAllowlist,
} from '../../../../src/effects/pipelock/config.js';
import { PipelockConfigSchema } from '../../../../src/effects/pipelock/schema.js';
import { PermanentEffectError } from '../../../../src/effects/types.js';
import { DEFAULT_HOSTS } from '../../../../src/plan/default-hosts.js';
import { mergeHosts } from '../../../../src/plan/resolve.js';
import { fakePlan } from '../../../support/fake-plan.js';

function planWith(allow: string[], extra: Partial<Parameters<typeof fakePlan>[1]> = {}) {
  return fakePlan('dev-abc12', {
    hosts: mergeHosts(allow, DEFAULT_HOSTS),
    default_hosts: [...DEFAULT_HOSTS].sort(),
    egress: { proxy: 'pipelock', pipelock_image: null },
    ...extra,
  });
}

/** The YAML as pipelock would read it: parsed by an independent YAML parser, then held to the schema. */
function readBack(yamlText: string) {
  const docs = yamlText.split(/^---$/m);
  expect(docs).toHaveLength(1);
  return PipelockConfigSchema.parse(parseYaml(yamlText));
}

describe('pipelock allowlist mapping', () => {
  it('maps exact hosts one to one', () => {
    const { entries, widenings } = pipelockAllowlist({
      hosts: ['github.com', 'registry.npmjs.org'],
      default_hosts: [],
    });
    expect(entries).toEqual(['github.com', 'registry.npmjs.org']);
    expect(widenings).toEqual([]);
  });

  it('keeps *.domain and records that pipelock also admits the apex', () => {
    const { entries, widenings } = pipelockAllowlist({ hosts: ['*.githubusercontent.com'], default_hosts: [] });
    expect(entries).toEqual(['*.githubusercontent.com']);
    expect(widenings).toEqual([
      {
        entry: '*.githubusercontent.com',
        kind: 'apex-included',
        explanation: expect.stringContaining('githubusercontent.com itself'),
      },
    ]);
  });

  it('drops the port, which pipelock host lists cannot carry, and records the widening', () => {
    const { entries, widenings } = pipelockAllowlist({
      hosts: ['registry.npmjs.org:443', 'mirror.internal.test:8080'],
      default_hosts: [],
    });
    expect(entries).toEqual(['mirror.internal.test', 'registry.npmjs.org']);
    expect(widenings.map((w) => [w.entry, w.kind])).toEqual([
      ['registry.npmjs.org:443', 'any-port'],
      ['mirror.internal.test:8080', 'any-port'],
    ]);
  });

  it('deduplicates entries that differ only by port', () => {
    const { entries } = pipelockAllowlist({
      hosts: ['example.com', 'example.com:443', 'example.com:8443'],
      default_hosts: [],
    });
    expect(entries).toEqual(['example.com']);
  });

  it('writes IP literals bare, IPv6 without brackets', () => {
    const { entries } = pipelockAllowlist({ hosts: ['192.0.2.10:8080', '[2001:db8::1]:443'], default_hosts: [] });
    expect(entries).toEqual(['192.0.2.10', '2001:db8::1']);
  });

  it('includes the baked default hosts even when plan.hosts lacks them', () => {
    const { entries } = pipelockAllowlist({ hosts: ['github.com'], default_hosts: [...DEFAULT_HOSTS] });
    for (const host of DEFAULT_HOSTS) expect(entries).toContain(host);
    expect(entries).toContain('github.com');
  });

  it('is sorted so the same plan always yields the same file', () => {
    const { entries } = pipelockAllowlist({
      hosts: ['zeta.example', 'alpha.example', '*.mid.example'],
      default_hosts: [],
    });
    expect(entries).toEqual(['*.mid.example', 'alpha.example', 'zeta.example']);
  });
});

describe('generatePipelockConfig', () => {
  const plan = planWith(['github.com', '*.githubusercontent.com', 'registry.npmjs.org:443']);
  const text = generatePipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT });
  const config = readBack(text);

  it("round-trips through a YAML parser into pipelock's documented schema", () => {
    expect(config).toEqual(buildPipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT }));
  });

  it('runs strict mode, enforcing, without block hints that reveal policy to the agent', () => {
    expect(config.version).toBe(1);
    expect(config.mode).toBe('strict');
    expect(config.enforce).toBe(true);
    expect(config.explain_blocks).toBe(false);
  });

  it('allowlists the plan hosts with defaults included', () => {
    expect(config.api_allowlist).toEqual(
      [...new Set(['*.githubusercontent.com', 'github.com', 'registry.npmjs.org', ...DEFAULT_HOSTS])].sort(),
    );
  });

  it('turns the forward proxy on, with SNI checked against the CONNECT target', () => {
    expect(config.forward_proxy).toEqual({ enabled: true, sni_verification: true });
  });

  it('listens on all interfaces at the given port so the agent can reach it across the internal network', () => {
    expect(config.fetch_proxy.listen).toBe('0.0.0.0:8888');
    expect(readBack(generatePipelockConfig(plan, { listenPort: 3130 })).fetch_proxy.listen).toBe('0.0.0.0:3130');
  });

  it('keeps secret scanning blocking on plain egress, where no real secret should ever appear', () => {
    expect(config.request_body_scanning).toMatchObject({
      enabled: true,
      action: 'block',
      scan_headers: true,
      header_mode: 'sensitive',
    });
    expect(config.request_body_scanning.sensitive_headers).toContain('Authorization');
    expect(config.dlp).toEqual({ scan_env: true, include_defaults: true });
  });

  it('never carries a credential route, its upstream or its secret source: those stay with the gateway', () => {
    const withRoutes = planWith(['github.com'], {
      credentials: [
        {
          role: 'anthropic-base-url',
          upstream: 'https://api.anthropic.com',
          auth: 'oauth',
          token_source: 'env:CLAUDE_BOTTLE_OAUTH_TOKEN',
        },
        { host: 'api.github.com', auth: 'bearer', token_source: 'env:GITHUB_TOKEN' },
      ],
    });
    const routed = generatePipelockConfig(withRoutes, { listenPort: PIPELOCK_LISTEN_PORT });
    expect(routed).not.toMatch(/GITHUB_TOKEN|CLAUDE_BOTTLE_OAUTH_TOKEN|token_source|api\.github\.com/);
    expect(readBack(routed).api_allowlist).not.toContain('api.github.com');
  });

  it('logs allowed and blocked decisions as JSON lines on stdout', () => {
    expect(config.logging).toEqual({ format: 'json', output: 'stdout', include_allowed: true, include_blocked: true });
  });

  it('blocks private, loopback, link-local and metadata ranges after resolution', () => {
    expect(config.internal).toEqual([...PIPELOCK_INTERNAL_RANGES]);
    expect(config.internal).toEqual(
      expect.arrayContaining([
        '10.0.0.0/8',
        '172.16.0.0/12',
        '192.168.0.0/16',
        '169.254.0.0/16',
        '127.0.0.0/8',
        'fc00::/7',
      ]),
    );
  });

  it('trusts only the operator-pinned extra_hosts names to resolve internally', () => {
    expect(config.trusted_domains).toEqual([]);
    const pinned = readBack(
      generatePipelockConfig(
        planWith(['mirror.internal.test'], { extra_hosts: { 'Mirror.Internal.Test': 'host-gateway' } }),
        { listenPort: 8888 },
      ),
    );
    expect(pinned.trusted_domains).toEqual(['mirror.internal.test']);
    expect(pinned.api_allowlist).toContain('mirror.internal.test');
  });

  it('is one YAML document that starts with a comment naming the bottle', () => {
    expect(text.startsWith('# pipelock config for bottle dev-abc12 (agent dev)')).toBe(true);
    expect(text).not.toMatch(/^---/m);
  });

  it('is byte-for-byte stable for the same plan', () => {
    expect(generatePipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT })).toBe(text);
  });

  it('refuses a listen port pipelock could not bind', () => {
    expect(() => generatePipelockConfig(plan, { listenPort: 70000 })).toThrow(/port/);
  });
});

describe('PipelockConfigSchema', () => {
  const valid = buildPipelockConfig(planWith(['github.com']), { listenPort: 8888 });

  it('rejects keys pipelock does not know, as pipelock itself does at load', () => {
    expect(PipelockConfigSchema.safeParse({ ...valid, allowlist: ['x.example'] }).success).toBe(false);
    expect(
      PipelockConfigSchema.safeParse({ ...valid, forward_proxy: { ...valid.forward_proxy, port: 8888 } }).success,
    ).toBe(false);
  });

  it.each([
    ['host:port', 'github.com:443'],
    ['URL', 'https://github.com'],
    ['interior wildcard', 'api.*.example.com'],
    ['top-level wildcard', '*.com'],
    ['uppercase', 'GitHub.com'],
  ])('rejects an allowlist entry written as a %s', (_label, entry) => {
    expect(PipelockConfigSchema.safeParse({ ...valid, api_allowlist: [entry] }).success).toBe(false);
  });

  it('accepts exact hosts, *.domain wildcards and IP literals', () => {
    expect(
      PipelockConfigSchema.safeParse({
        ...valid,
        api_allowlist: ['github.com', '*.example.co.uk', '192.0.2.1', '2001:db8::1'],
      }).success,
    ).toBe(true);
  });

  it('rejects an internal range that is not a CIDR', () => {
    expect(PipelockConfigSchema.safeParse({ ...valid, internal: ['10.0.0.0'] }).success).toBe(false);
    expect(PipelockConfigSchema.safeParse({ ...valid, internal: ['10.0.0.0/33'] }).success).toBe(false);
  });
});

describe('plans pipelock cannot express', () => {
  it('are refused with one permanent error naming the entry, not a half-valid file', () => {
    const plan = fakePlan('dev-abc12', { hosts: ['my_host.example'], default_hosts: [] });
    expect(() => generatePipelockConfig(plan, { listenPort: 8888 })).toThrow(PermanentEffectError);
    expect(() => generatePipelockConfig(plan, { listenPort: 8888 })).toThrow(
      /api_allowlist\.0: "my_host\.example" is not a legal host name/,
    );
  });
});
