/**
 * Property tests for the egress allowlist (host patterns as the gateway's
 * EgressPolicy applies them): for random allowlists and random requests, a
 * host that an independent, label-by-label reading of the list does not
 * admit is never allowed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EgressPolicy, type ProxyMode } from '../../../src/gateway/egress-policy.js';
import { parseHostPattern } from '../../../src/shared/host-pattern.js';

interface Entry {
  wildcard: boolean;
  domain: string;
  port: number | null;
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const topLevel = fc.stringMatching(/^[a-z]{2,4}$/);
const domain = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), topLevel)
  .map(([labels, tld]) => [...labels, tld].join('.'));
const port = fc.oneof(fc.constant(null), fc.constantFrom(22, 80, 443, 8080), fc.integer({ min: 1, max: 65535 }));
const entry: fc.Arbitrary<Entry> = fc.record({ wildcard: fc.boolean(), domain, port });
const mode: fc.Arbitrary<ProxyMode> = fc.constantFrom('connect', 'http');

function render(e: Entry): string {
  return `${e.wildcard ? '*.' : ''}${e.domain}${e.port === null ? '' : `:${e.port}`}`;
}

/** The specification, written independently of the matcher: compare label lists. */
function oracleAllows(entries: readonly Entry[], host: string, requestPort: number, requestMode: ProxyMode): boolean {
  const hostLabels = host.toLowerCase().replace(/\.$/, '').split('.');
  return entries.some((e) => {
    const wantPort = e.port ?? (requestMode === 'connect' ? 443 : 80);
    if (requestPort !== wantPort) return false;
    const domainLabels = e.domain.split('.');
    if (e.wildcard) {
      if (hostLabels.length <= domainLabels.length) return false;
      return domainLabels.every((l, i) => hostLabels[hostLabels.length - domainLabels.length + i] === l);
    }
    return hostLabels.length === domainLabels.length && domainLabels.every((l, i) => hostLabels[i] === l);
  });
}

/** Hosts near the allowlisted ones: where a sloppy matcher would go wrong. */
function nearMisses(e: Entry): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(e.domain),
    label.map((l) => `${l}.${e.domain}`),
    label.map((l) => `${l}${e.domain}`),
    label.map((l) => `${l}-${e.domain}`),
    label.map((l) => `${e.domain}.${l}`),
    label.map((l) => `${e.domain}${l}`),
    fc.constant(e.domain.toUpperCase()),
    fc.constant(`${e.domain}.`),
    fc.constant(e.domain.split('.').slice(1).join('.')),
    fc.constant(e.domain.replace(/\./g, '')),
    label.map((l) => `${l}.${e.domain.split('.').slice(1).join('.')}`),
  );
}

const scenario = fc.array(entry, { minLength: 1, maxLength: 4 }).chain((entries) =>
  fc.record({
    entries: fc.constant(entries),
    host: fc.oneof(domain, fc.constantFrom(...entries).chain(nearMisses)),
    port: fc.oneof(fc.constantFrom(80, 443, 22, 8080), fc.constantFrom(...entries.map((e) => e.port ?? 443))),
    mode,
  }),
);

describe('property: the allowlist never admits a host the list does not name', () => {
  it('checkAllowlist says allowlisted exactly when the label-by-label reading does', () => {
    fc.assert(
      fc.property(scenario, ({ entries, host, port: requestPort, mode: requestMode }) => {
        const policy = new EgressPolicy(entries.map(render), {}, async () => []);
        const allowed = policy.checkAllowlist(host, requestPort, requestMode) === 'allowlisted';
        expect(allowed).toBe(oracleAllows(entries, host, requestPort, requestMode));
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary text as a request host is never allowed unless the list names it', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 3 }),
        fc.string({ maxLength: 40 }),
        mode,
        (entries, host, requestMode) => {
          const policy = new EgressPolicy(entries.map(render), {}, async () => []);
          for (const requestPort of [80, 443]) {
            if (policy.checkAllowlist(host, requestPort, requestMode) === 'allowlisted') {
              expect(oracleAllows(entries, host.trim(), requestPort, requestMode)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a wildcard never admits its own apex, nor a host that merely ends in the same text', () => {
    fc.assert(
      fc.property(domain, label, (apex, prefix) => {
        const pattern = parseHostPattern(`*.${apex}`);
        const policy = new EgressPolicy([pattern.raw], {}, async () => []);
        expect(policy.checkAllowlist(apex, 443, 'connect')).toBe('not_in_allowlist');
        expect(policy.checkAllowlist(`${prefix}${apex}`, 443, 'connect')).toBe('not_in_allowlist');
        expect(policy.checkAllowlist(`${prefix}.${apex}`, 443, 'connect')).toBe('allowlisted');
      }),
      { numRuns: 1000 },
    );
  });
});
