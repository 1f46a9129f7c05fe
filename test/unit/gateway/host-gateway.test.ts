import { describe, expect, it } from 'vitest';
import { resolveHostGateway, UnresolvedHostGatewayError } from '../../../src/gateway/host-gateway.js';

const HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost
# a comment
172.17.0.1\tMirror.Test
10.213.0.10\tcb-gateway-abcde
`;

describe('resolveHostGateway', () => {
  it('takes the address Docker wrote for each host-gateway name, case-insensitively', () => {
    expect(resolveHostGateway({ 'mirror.test': 'host-gateway', 'pinned.test': '10.9.8.7' }, HOSTS)).toEqual({
      'mirror.test': '172.17.0.1',
      'pinned.test': '10.9.8.7',
    });
  });

  it('refuses a host-gateway name the hosts file does not name', () => {
    expect(() => resolveHostGateway({ 'absent.test': 'host-gateway' }, HOSTS)).toThrow(UnresolvedHostGatewayError);
  });

  it('ignores commented-out entries', () => {
    expect(() => resolveHostGateway({ 'old.test': 'host-gateway' }, '# 172.17.0.1 old.test\n')).toThrow(/old\.test/);
  });
});
