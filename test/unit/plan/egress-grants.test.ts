import { describe, expect, it } from 'vitest';
import { withApprovedGrants } from '../../../src/plan/egress-grants.js';

describe('grants approved in earlier runs', () => {
  const entries = [
    { host: '*.example.test', inspect: true, methods: ['GET'] },
    { host: 'git.example.test', inspect: true, paths: ['/**', '!/**/git-receive-pack'] },
    { host: 'open.test', inspect: true },
  ];

  it('join the entry that admits their host, the exact one before a wildcard, once each', () => {
    const grant = { host: 'git.example.test', port: 443, paths: ['/acme/app.git/git-receive-pack'] };
    const planned = withApprovedGrants(entries, [
      grant,
      grant,
      { host: 'api.example.test', port: 443, methods: ['POST'] },
    ]);
    expect(planned).toEqual([
      { ...entries[0], grants: [{ methods: ['POST'] }] },
      { ...entries[1], grants: [{ paths: ['/acme/app.git/git-receive-pack'] }] },
      entries[2],
    ]);
    expect(entries[1]).not.toHaveProperty('grants');
  });

  it('are left out when no entry with rules admits their host any more', () => {
    const planned = withApprovedGrants(entries, [
      { host: 'open.test', port: 443, methods: ['POST'] },
      { host: 'gone.test', port: 443, methods: ['POST'] },
    ]);
    expect(planned).toEqual(entries);
  });
});
