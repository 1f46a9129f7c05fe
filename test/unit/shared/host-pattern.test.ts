import { describe, expect, it } from 'vitest';
import { HostPatternError, parseHostPattern, patternMatches } from '../../../src/shared/host-pattern.js';

describe('parseHostPattern', () => {
  it('parses an exact host, lowercased, without port', () => {
    expect(parseHostPattern('GitHub.com')).toEqual({
      raw: 'GitHub.com',
      kind: 'exact',
      host: 'github.com',
      port: null,
    });
  });

  it('parses a subdomain wildcard with a port', () => {
    expect(parseHostPattern('*.githubusercontent.com:8443')).toEqual({
      raw: '*.githubusercontent.com:8443',
      kind: 'subdomains',
      host: 'githubusercontent.com',
      port: 8443,
    });
  });

  it('drops a trailing dot', () => {
    expect(parseHostPattern('example.com.').host).toBe('example.com');
  });

  it('accepts IPv4 and bracketed IPv6 addresses as exact hosts', () => {
    expect(parseHostPattern('10.0.0.7:8080')).toMatchObject({ kind: 'exact', host: '10.0.0.7', port: 8080 });
    expect(parseHostPattern('[2001:db8::1]:443')).toMatchObject({ kind: 'exact', host: '2001:db8::1', port: 443 });
    expect(parseHostPattern('2001:db8::1')).toMatchObject({ kind: 'exact', host: '2001:db8::1', port: null });
  });

  it('accepts punycode names', () => {
    expect(parseHostPattern('xn--bcher-kva.de').host).toBe('xn--bcher-kva.de');
  });

  const rejected: Array<[string, RegExp]> = [
    ['*', /alone would allow every host/],
    ['*.', /no domain after it/],
    ['https://example.com', /URL scheme/],
    ['example.com/path', /contains a path/],
    ['exa mple.com', /whitespace/],
    ['bücher.de', /punycode/],
    ['a..b.com', /empty label/],
    ['.example.com', /empty label/],
    [`${'x'.repeat(64)}.com`, /longer than 63/],
    ['ex_am$ple.com', /invalid characters/],
    ['-example.com', /invalid characters/],
    ['a.*.com', /wildcard not at the start/],
    ['*example.com', /wildcard not at the start/],
    ['example.com:0', /out of range/],
    ['example.com:65536', /out of range/],
    ['example.com:', /is not a number/],
    ['example.com:80a', /is not a number/],
    ['*.com', /whole top-level domain/],
    ['*.10.0.0.1', /wildcard on an IP address/],
    ['[example.com]:443', /no IPv6 address/],
    ['', /empty host/],
  ];
  for (const [raw, reason] of rejected) {
    it(`rejects ${JSON.stringify(raw)} with a reason and a fix`, () => {
      let caught: unknown;
      try {
        parseHostPattern(raw);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(HostPatternError);
      const err = caught as HostPatternError;
      expect(err.message).toMatch(reason);
      expect(err.fix.length).toBeGreaterThan(5);
      expect(err.message).toBe(`${err.reason}; ${err.fix}`);
    });
  }
});

describe('patternMatches', () => {
  const exact = parseHostPattern('github.com');
  const sub = parseHostPattern('*.github.com');
  const withPort = parseHostPattern('registry.test:8443');

  it('uses 443 as the default port for CONNECT and 80 for plain HTTP', () => {
    expect(patternMatches(exact, 'github.com', 443, 'connect')).toBe(true);
    expect(patternMatches(exact, 'github.com', 80, 'connect')).toBe(false);
    expect(patternMatches(exact, 'github.com', 80, 'http')).toBe(true);
    expect(patternMatches(exact, 'github.com', 443, 'http')).toBe(false);
  });

  it('requires the explicit port when the pattern has one, whatever the mode', () => {
    expect(patternMatches(withPort, 'registry.test', 8443, 'connect')).toBe(true);
    expect(patternMatches(withPort, 'registry.test', 8443, 'http')).toBe(true);
    expect(patternMatches(withPort, 'registry.test', 443, 'connect')).toBe(false);
  });

  it('matches "*.d" on subdomains only, never on d itself', () => {
    expect(patternMatches(sub, 'api.github.com', 443, 'connect')).toBe(true);
    expect(patternMatches(sub, 'a.b.github.com', 443, 'connect')).toBe(true);
    expect(patternMatches(sub, 'github.com', 443, 'connect')).toBe(false);
    expect(patternMatches(sub, 'evilgithub.com', 443, 'connect')).toBe(false);
    expect(patternMatches(sub, 'github.com.evil.test', 443, 'connect')).toBe(false);
  });

  it('does not let an exact pattern match subdomains or look-alikes', () => {
    expect(patternMatches(exact, 'api.github.com', 443, 'connect')).toBe(false);
    expect(patternMatches(exact, 'github.community', 443, 'connect')).toBe(false);
  });

  it('ignores case and a trailing dot in the request host', () => {
    expect(patternMatches(exact, 'GitHub.COM.', 443, 'connect')).toBe(true);
    expect(patternMatches(sub, 'API.GitHub.com.', 443, 'connect')).toBe(true);
  });

  it('matches IPv6 hosts given with or without brackets', () => {
    const v6 = parseHostPattern('[2001:db8::1]:443');
    expect(patternMatches(v6, '[2001:db8::1]', 443, 'connect')).toBe(true);
    expect(patternMatches(v6, '2001:db8::1', 443, 'connect')).toBe(true);
  });
});
