import { describe, expect, it } from 'vitest';
import { classifyAddress, firstForbidden } from '../../../src/gateway/address-policy.js';

describe('classifyAddress refuses addresses an agent must never reach', () => {
  it.each([
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.1.1', 'link_local'],
    ['169.254.169.254', 'cloud_metadata'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link_local'],
    ['febf::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['fd00:ec2::254', 'cloud_metadata'],
    ['fc00::1', 'unique_local'],
    ['fd12:3456::1', 'unique_local'],
    ['ff02::1', 'multicast'],
  ])('%s is %s', (address, category) => {
    expect(classifyAddress(address)).toEqual({ forbidden: true, category });
  });

  it.each([
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'cloud_metadata'],
    ['::FFFF:192.168.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
  ])('IPv4 hidden in IPv6 (%s) is judged as the IPv4 address: %s', (address, category) => {
    expect(classifyAddress(address)).toEqual({ forbidden: true, category });
  });

  it.each([
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'cloud_metadata'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b:1::1', 'reserved'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:a9fe:a9fe::', 'cloud_metadata'],
    ['2002:c0a8:0101:5::1', 'private'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'],
    ['2001:0:0a00:0001::1', 'private'],
  ])('IPv4 behind NAT64, 6to4 or Teredo (%s) is judged as that IPv4 address: %s', (address, category) => {
    expect(classifyAddress(address)).toEqual({ forbidden: true, category });
  });

  it.each(['fec0::1', 'feff:ffff::1', 'FEC0:0:0:1::1'])('site-local %s is refused', (address) => {
    expect(classifyAddress(address)).toEqual({ forbidden: true, category: 'site_local' });
  });

  it.each(['64:ff9b::8.8.8.8', '2002:0808:0808::1', '2001:0:4136:e378:8000:63bf:f7f7:f7f7'])(
    'a translated public IPv4 address (%s) passes',
    (address) => {
      expect(classifyAddress(address)).toEqual({ forbidden: false });
    },
  );

  it.each([
    '93.184.216.34',
    '1.1.1.1',
    '172.15.255.255',
    '172.32.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '169.253.255.255',
    '192.169.0.1',
    '11.0.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '2001:db8::1',
  ])('public address %s passes', (address) => {
    expect(classifyAddress(address)).toEqual({ forbidden: false });
  });

  it('treats a string that is not an IP address as forbidden', () => {
    expect(classifyAddress('example.com')).toEqual({ forbidden: true, category: 'not_an_ip' });
  });
});

describe('firstForbidden', () => {
  it('refuses a name when any one of its addresses is forbidden', () => {
    expect(firstForbidden(['93.184.216.34', '10.0.0.5'])).toEqual({ address: '10.0.0.5', category: 'private' });
  });

  it('returns null when every address is public', () => {
    expect(firstForbidden(['93.184.216.34', '2606:4700::1111'])).toBeNull();
  });
});
