import { describe, expect, it } from 'vitest';
import type { GatewayRoute } from '../../../src/gateway/config.js';
import { credentialHeader, routeUpstream } from '../../../src/gateway/credential-proxy.js';
import { hostHeaderAgrees, parseAuthority } from '../../../src/gateway/forward-proxy.js';
import { capabilityUrlFor, egressDeniedBody } from '../../../src/gateway/responses.js';

describe('parseAuthority (the CONNECT target)', () => {
  it('reads host and port, lowercased', () => {
    expect(parseAuthority('GitHub.com:443')).toEqual({ host: 'github.com', port: 443 });
    expect(parseAuthority('[2001:db8::1]:8443')).toEqual({ host: '2001:db8::1', port: 8443 });
  });

  it.each([
    'github.com',
    'github.com:0',
    'github.com:70000',
    'user@github.com:443',
    'github.com:443/path',
    'github.com:443?x',
    'git hub.com:443',
    '',
  ])('refuses %j', (raw) => {
    expect(parseAuthority(raw)).toBeNull();
  });
});

describe('hostHeaderAgrees', () => {
  it('accepts the same host and port, or no Host header at all', () => {
    expect(hostHeaderAgrees('Allowed.test', 'allowed.test', 80)).toBe(true);
    expect(hostHeaderAgrees('allowed.test:8080', 'allowed.test', 8080)).toBe(true);
    expect(hostHeaderAgrees(undefined, 'allowed.test', 80)).toBe(true);
  });

  it('refuses another host, another port, or junk', () => {
    expect(hostHeaderAgrees('blocked.test', 'allowed.test', 80)).toBe(false);
    expect(hostHeaderAgrees('allowed.test:81', 'allowed.test', 80)).toBe(false);
    expect(hostHeaderAgrees('allowed.test/evil', 'allowed.test', 80)).toBe(false);
    expect(hostHeaderAgrees('a@blocked.test', 'allowed.test', 80)).toBe(false);
  });

  it('reads the header as tunnels do: a fragment or query after the authority is refused', () => {
    expect(hostHeaderAgrees('allowed.test#x', 'allowed.test', 80)).toBe(false);
    expect(hostHeaderAgrees('allowed.test?x', 'allowed.test', 80)).toBe(false);
  });
});

describe('credentialHeader', () => {
  const route = (auth: GatewayRoute['auth'], header?: string): GatewayRoute => ({
    id: 'r',
    host: 'api.example.test',
    auth,
    header,
  });

  it.each([
    ['oauth', undefined, ['authorization', 'Bearer s3cret']],
    ['bearer', undefined, ['authorization', 'Bearer s3cret']],
    ['api-key', undefined, ['x-api-key', 's3cret']],
    ['header', 'X-Private-Token', ['x-private-token', 's3cret']],
  ] as const)('auth %s injects %j', (auth, header, expected) => {
    expect(credentialHeader(route(auth, header), 's3cret')).toEqual(expected);
  });

  it('auth basic base64-encodes "user:password"', () => {
    expect(credentialHeader(route('basic'), 'me:pw')).toEqual([
      'authorization',
      `Basic ${Buffer.from('me:pw').toString('base64')}`,
    ]);
  });
});

describe('routeUpstream', () => {
  it('defaults a host route to https on that host', () => {
    expect(routeUpstream({ id: 'gh', host: 'api.github.com', auth: 'bearer' }).href).toBe('https://api.github.com/');
  });
});

describe('egressDeniedBody', () => {
  it('says what was refused and the exact capability call to make', () => {
    const body = egressDeniedBody(
      { identity: 'implementer-ab12c', capabilityUrl: capabilityUrlFor('::ffff:172.18.0.2', 3129) },
      'pypi.org',
      443,
      'not_in_allowlist',
    );
    expect(body).toMatchObject({ error: 'egress_denied', host: 'pypi.org', port: 443, reason: 'not_in_allowlist' });
    expect(body.how_to_request).toBe(
      'ask the operator: POST http://172.18.0.2:3129/_bottle/capability ' +
        '{"kind":"egress","host":"pypi.org","port":443,"reason":"<why the task needs it>"} ' +
        'then the operator runs `bottle approve implementer-ab12c`',
    );
  });
});
