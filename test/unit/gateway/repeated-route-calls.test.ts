import { describe, expect, it } from 'vitest';
import { RepeatedRouteCalls } from '../../../src/gateway/repeated-route-calls.js';
import { DecisionLog } from '../../../src/gateway/decision-log.js';
import type { GatewayLine } from '../../../src/gateway/protocol.js';

const call = (method = 'POST', host = 'api.anthropic.test') => ({ host, port: 443, method });

describe('repeated credential-route calls', () => {
  it('writes the first call of a route and method, then one per window', () => {
    let now = 0;
    const repeats = new RepeatedRouteCalls(() => now, 1000);
    expect(repeats.shouldWrite(call())).toBe(true);
    now = 999;
    expect(repeats.shouldWrite(call())).toBe(false);
    now = 1000;
    expect(repeats.shouldWrite(call())).toBe(true);
    now = 1500;
    expect(repeats.shouldWrite(call())).toBe(false);
  });

  it('keeps routes and methods apart', () => {
    const repeats = new RepeatedRouteCalls(() => 0, 1000);
    expect(repeats.shouldWrite(call('POST'))).toBe(true);
    expect(repeats.shouldWrite(call('GET'))).toBe(true);
    expect(repeats.shouldWrite(call('POST', 'api.github.test'))).toBe(true);
    expect(repeats.shouldWrite({ host: 'api.github.test', port: 8443, method: 'POST' })).toBe(true);
    expect(repeats.shouldWrite(call('GET'))).toBe(false);
  });

  it('writes every call of keys it has no room to remember, so forgetting never hides one', () => {
    let now = 0;
    const repeats = new RepeatedRouteCalls(() => now, 1000, 2);
    expect(repeats.shouldWrite(call('A'))).toBe(true);
    expect(repeats.shouldWrite(call('B'))).toBe(true);
    expect(repeats.shouldWrite(call('C'))).toBe(true);
    expect(repeats.shouldWrite(call('C'))).toBe(true);
    expect(repeats.shouldWrite(call('A'))).toBe(false);
    // Once the remembered ones expire, their room is taken again.
    now = 1000;
    expect(repeats.shouldWrite(call('C'))).toBe(true);
    expect(repeats.shouldWrite(call('C'))).toBe(false);
  });
});

describe('the decision log with repeated route calls', () => {
  it('counts an unwritten route call without numbering it, and never thins refusals or other allows', () => {
    const written: GatewayLine[] = [];
    const counted: GatewayLine[] = [];
    const log = new DecisionLog((line) => written.push(line), undefined, {
      repeats: new RepeatedRouteCalls(() => 0, 1000),
      count: (line) => counted.push(line),
    });
    const route = { host: 'api.anthropic.test', port: 443, method: 'POST' };
    for (let i = 0; i < 3; i++) log.allowed(route, 'credential_route');
    for (let i = 0; i < 2; i++) log.denied(route, 'budget_exhausted');
    for (let i = 0; i < 2; i++) log.allowed({ host: 'pypi.test', port: 443, method: 'GET' }, 'allowlisted');
    expect(written.map((l) => (l.t === 'egress' ? `${l.n} ${l.decision} ${l.reason}` : l.t))).toEqual([
      '1 allowed credential_route',
      '2 denied budget_exhausted',
      '3 denied budget_exhausted',
      '4 allowed allowlisted',
      '5 allowed allowlisted',
    ]);
    expect(counted).toHaveLength(2);
    expect(counted[0]).toMatchObject({ t: 'egress', decision: 'allowed', host: 'api.anthropic.test', method: 'POST' });
  });
});
