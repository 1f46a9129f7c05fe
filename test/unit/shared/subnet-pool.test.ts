import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SUBNET_POOL,
  overlaps,
  parseCidr,
  subnetAddresses,
  subnetCandidates,
  subnetPool,
  SubnetPoolError,
} from '../../../src/shared/subnet-pool.js';

describe('bottle subnet pool', () => {
  it('defaults to a range outside Docker default address pools', () => {
    const pool = subnetPool({});
    expect(subnetPool({}).prefix).toBe(16);
    for (const dockerDefault of ['172.17.0.0/16', '172.31.0.0/16', '192.168.0.0/16']) {
      expect(overlaps(pool, parseCidr(dockerDefault))).toBe(false);
    }
    expect(DEFAULT_SUBNET_POOL).toBe('10.213.0.0/16');
  });

  it('offers every /29 of the pool exactly once, starting where the seed says', () => {
    const pool = parseCidr('10.9.0.0/26');
    const a = [...subnetCandidates(pool, 'cb-dev-aaaaa-internal')];
    const b = [...subnetCandidates(pool, 'cb-dev-bbbbb-internal')];
    expect(a).toHaveLength(8);
    expect(new Set(a).size).toBe(8);
    expect([...a].sort()).toEqual([...b].sort());
    expect(a.every((s) => s.endsWith('/29') && overlaps(parseCidr(s), pool))).toBe(true);
    expect([...subnetCandidates(pool, 'same')]).toEqual([...subnetCandidates(pool, 'same')]);
  });

  it('fixes the bridge, gateway, agent and pipelock addresses inside a subnet', () => {
    expect(subnetAddresses('10.213.4.8/29')).toEqual({
      bridge: '10.213.4.9',
      gateway: '10.213.4.10',
      agent: '10.213.4.11',
      pipelock: '10.213.4.12',
    });
  });

  it.each([
    ['not-a-cidr', /IPv4 CIDR/],
    ['10.0.0.1/16', /host bits set; did you mean 10.0.0.0\/16/],
    ['10.0.0.0/30', /smaller than one bottle network/],
    ['300.0.0.0/8', /IPv4 CIDR/],
  ])('refuses the pool %s with a message that says why', (text, message) => {
    expect(() => subnetPool({ CLAUDE_BOTTLE_SUBNET_POOL: text })).toThrow(SubnetPoolError);
    expect(() => subnetPool({ CLAUDE_BOTTLE_SUBNET_POOL: text })).toThrow(message);
  });
});
