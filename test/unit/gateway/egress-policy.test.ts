import { describe, expect, it, vi } from 'vitest';
import { EgressPolicy } from '../../../src/gateway/egress-policy.js';

describe('EgressPolicy.checkAllowlist', () => {
  const policy = new EgressPolicy(['github.com', '*.githubusercontent.com', 'registry.npmjs.org:8443'], {});

  it('allows a listed host on its default port', () => {
    expect(policy.checkAllowlist('GitHub.com.', 443, 'connect')).toBe('allowlisted');
    expect(policy.checkAllowlist('raw.githubusercontent.com', 443, 'connect')).toBe('allowlisted');
  });

  it('says port_not_allowed when the host is listed under another port', () => {
    expect(policy.checkAllowlist('github.com', 22, 'connect')).toBe('port_not_allowed');
    expect(policy.checkAllowlist('registry.npmjs.org', 443, 'connect')).toBe('port_not_allowed');
    expect(policy.checkAllowlist('github.com', 443, 'http')).toBe('port_not_allowed');
  });

  it('says not_in_allowlist for anything else', () => {
    expect(policy.checkAllowlist('blocked.test', 443, 'connect')).toBe('not_in_allowlist');
    expect(policy.checkAllowlist('githubusercontent.com', 443, 'connect')).toBe('not_in_allowlist');
  });
});

describe('EgressPolicy.resolve', () => {
  it('uses the pinned address for an extra_hosts name without asking DNS, even when private', async () => {
    const resolver = vi.fn(async () => ['93.184.216.34']);
    const policy = new EgressPolicy([], { 'Mirror.Internal.test': '10.0.0.7' }, resolver);
    expect(await policy.resolve('mirror.internal.test')).toEqual({ ok: true, address: '10.0.0.7', pinned: true });
    expect(resolver).not.toHaveBeenCalled();
  });

  it('refuses a name when any resolved address is private', async () => {
    const policy = new EgressPolicy([], {}, async () => ['93.184.216.34', '127.0.0.1']);
    expect(await policy.resolve('sneaky.test')).toMatchObject({
      ok: false,
      why: 'private_address',
      address: '127.0.0.1',
      category: 'loopback',
    });
  });

  it('checks an IP literal directly without DNS', async () => {
    const resolver = vi.fn(async () => ['93.184.216.34']);
    const policy = new EgressPolicy([], {}, resolver);
    expect(await policy.resolve('[::ffff:169.254.169.254]')).toMatchObject({ ok: false, category: 'cloud_metadata' });
    expect(resolver).not.toHaveBeenCalled();
  });

  it('returns the first vetted address to connect to', async () => {
    const policy = new EgressPolicy([], {}, async () => ['93.184.216.34', '93.184.216.35']);
    expect(await policy.resolve('example.test')).toEqual({ ok: true, address: '93.184.216.34', pinned: false });
  });

  it('reports a lookup failure as unresolvable, not as a policy decision', async () => {
    const policy = new EgressPolicy([], {}, async () => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    });
    expect(await policy.resolve('nowhere.invalid')).toEqual({ ok: false, why: 'unresolvable', detail: 'ENOTFOUND' });
  });
});
