import { describe, expect, it } from 'vitest';
import { GatewayConfigSchema } from '../../../src/gateway/config.js';
import { EgressEntries } from '../../../src/gateway/egress-entries.js';
import { egressEntries } from '../../../src/plan/resolve.js';

describe('egress entries', () => {
  const entries = new EgressEntries([
    { host: '*.example.com', inspect: true },
    { host: 'api.example.com', inspect: false },
    { host: '10.0.0.5', inspect: true },
    { host: 'pypi.org', inspect: true, methods: ['GET'] },
  ]);

  it('an exact entry wins over a wildcard, so a pinned client can be carved out', () => {
    expect(entries.lookup('api.example.com', 443, 'connect')?.inspect).toBe(false);
    expect(entries.lookup('www.example.com', 443, 'connect')?.inspect).toBe(true);
  });

  it('never inspects an IP address, and no entry means not inspected (a live grant)', () => {
    expect(entries.lookup('10.0.0.5', 443, 'connect')?.inspect).toBe(false);
    expect(entries.lookup('granted.test', 443, 'connect')).toBeUndefined();
  });

  it('the CA is made for the inspected entries domains only', () => {
    expect(entries.inspectedNames().sort()).toEqual(['example.com', 'pypi.org']);
  });

  it('the gateway config refuses rules without inspection and entries outside the allowlist', () => {
    const parsed = GatewayConfigSchema.safeParse({
      identity: 'x-ab12c',
      allow: ['a.test'],
      entries: [
        { host: 'a.test', inspect: false, paths: ['/x/**'] },
        { host: 'b.test', inspect: true },
      ],
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.message).sort()).toEqual([
      'method and path rules need inspection',
      'not in allow',
    ]);
  });

  it('the plan inspects every host unless its entry opts out or it is an IP address', () => {
    const planned = egressEntries(
      ['1.2.3.4', 'api.anthropic.com', 'github.com', 'pinned.example'],
      [
        { host: 'GitHub.com', paths: ['/acme/**'] },
        { host: 'pinned.example', inspect: false },
      ],
    );
    expect(planned).toEqual([
      { host: '1.2.3.4', inspect: false },
      { host: 'api.anthropic.com', inspect: true },
      { host: 'github.com', inspect: true, paths: ['/acme/**'] },
      { host: 'pinned.example', inspect: false },
    ]);
  });
});
