import { describe, expect, it } from 'vitest';
import { firstContainerAddress } from '../../src/effects/docker/networks.js';

describe('firstContainerAddress', () => {
  it.each([
    ['172.20.0.0/16', '172.20.0.1', '172.20.0.2'],
    ['192.168.224.0/20', '192.168.224.1', '192.168.224.2'],
    ['10.9.0.0/24', '10.9.0.254', undefined],
    ['10.9.0.0/24', '10.9.0.1', '10.9.0.2'],
    ['10.9.0.248/30', '10.9.0.249', '10.9.0.250'],
    ['10.9.0.0/24', '10.9.1.1', undefined],
    ['10.9.0.0/24', 'not-an-address', undefined],
    ['fd00::/64', 'fd00::1', undefined],
  ])('in %s with the bridge at %s, the first container gets %s', (subnet, gateway, expected) => {
    expect(firstContainerAddress({ subnet, gateway })).toBe(expected);
  });
});
