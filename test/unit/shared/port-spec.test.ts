import { describe, expect, it } from 'vitest';
import { isExposedAddress, mergePortSpecs, parsePortSpec } from '../../../src/shared/port-spec.js';

describe('published port specs', () => {
  it('default to loopback and take an explicit IPv4 address', () => {
    expect(parsePortSpec('3000:5173')).toEqual({ address: '127.0.0.1', host_port: 3000, bottle_port: 5173 });
    expect(parsePortSpec('0.0.0.0:8080:80')).toEqual({ address: '0.0.0.0', host_port: 8080, bottle_port: 80 });
  });

  it('refuse what is not [ADDR:]HOST_PORT:BOTTLE_PORT, naming the entry', () => {
    expect(() => parsePortSpec('3000')).toThrow('"3000" is not [ADDR:]HOST_PORT:BOTTLE_PORT');
    expect(() => parsePortSpec('3000:0')).toThrow('BOTTLE_PORT must be a port number from 1 to 65535');
    expect(() => parsePortSpec('localhost:3000:3000')).toThrow('the address must be an IPv4 address');
    expect(() => parsePortSpec('70000:3000')).toThrow('HOST_PORT must be a port number');
  });

  it('warn about any address but loopback', () => {
    expect(isExposedAddress('127.0.0.1')).toBe(false);
    expect(isExposedAddress('0.0.0.0')).toBe(true);
  });

  it('keep one entry per host port and refuse the same host port for two different ports', () => {
    const a = parsePortSpec('3001:3000');
    expect(mergePortSpecs([a, parsePortSpec('127.0.0.1:3001:3000'), parsePortSpec('2000:1')])).toEqual([
      { address: '127.0.0.1', host_port: 2000, bottle_port: 1 },
      a,
    ]);
    expect(() => mergePortSpecs([a, parsePortSpec('3001:4000')])).toThrow('host port 3001 is published twice');
  });
});
