import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTrafficSummaries, TrafficLedger } from '../../../src/gateway/traffic-ledger.js';
import type { EgressLine } from '../../../src/gateway/protocol.js';
import { OTHER_HOSTS, UNKNOWN_HOST, type HostTraffic } from '../../../src/shared/traffic-summary.js';

const T0 = Date.parse('2026-12-07T10:00:00.000Z');

function decision(decision: EgressLine['decision'], host: string | undefined, method = 'GET'): EgressLine {
  return { t: 'egress', n: 1, decision, host, port: 443, method, reason: 'r' };
}

function ledgerAt(time: { now: number }, maxHosts?: number): TrafficLedger {
  return new TrafficLedger(() => time.now, maxHosts);
}

describe('TrafficLedger', () => {
  it('counts allowed and denied decisions per host with the methods seen and the last time', () => {
    const time = { now: T0 };
    const ledger = ledgerAt(time);
    ledger.note(decision('allowed', 'a.test', 'GET'));
    ledger.note(decision('allowed', 'a.test', 'POST'));
    time.now += 1000;
    ledger.note(decision('denied', 'a.test', 'GET'));
    ledger.note(decision('denied', 'b.test', 'CONNECT'));
    // An audit's request has its own decision: counting it again would count that request twice.
    ledger.note(decision('audited', 'a.test', 'PUT'));
    const taken = ledger.takeChanged()!;
    expect(taken.pending).toBe(0);
    expect(taken.hosts).toEqual([
      {
        host: 'a.test',
        allowed: 2,
        denied: 1,
        bytes_up: 0,
        bytes_down: 0,
        methods: ['GET', 'POST'],
        last_seen: new Date(T0 + 1000).toISOString(),
      },
      expect.objectContaining({ host: 'b.test', allowed: 0, denied: 1, methods: ['CONNECT'] }),
    ]);
  });

  it('counts a request refused before its host was read under the unknown host', () => {
    const ledger = ledgerAt({ now: T0 });
    ledger.note(decision('denied', undefined));
    expect(ledger.takeChanged()!.hosts[0]).toMatchObject({ host: UNKNOWN_HOST, denied: 1 });
  });

  it("counts a tunnel's bytes both ways, including what the client sent before it opened", () => {
    const ledger = ledgerAt({ now: T0 });
    const client = new PassThrough();
    const upstream = new PassThrough();
    ledger.tunnel('a.test', client, upstream, 5);
    client.emit('data', Buffer.alloc(100));
    upstream.emit('data', Buffer.alloc(1000));
    upstream.emit('data', Buffer.alloc(24));
    expect(ledger.takeChanged()!.hosts[0]).toMatchObject({ host: 'a.test', bytes_up: 105, bytes_down: 1024 });
  });

  it("counts a proxied request's body and its response's body", () => {
    const ledger = ledgerAt({ now: T0 });
    const req = new PassThrough() as unknown as IncomingMessage;
    const proxyRes = new PassThrough() as unknown as IncomingMessage;
    const stranger = new PassThrough() as unknown as IncomingMessage;
    ledger.exchange('a.test', req);
    req.emit('data', Buffer.alloc(7));
    ledger.response(proxyRes, req);
    proxyRes.emit('data', Buffer.alloc(70));
    // A response to a request the ledger was not given is not counted against any host.
    ledger.response(new PassThrough() as unknown as IncomingMessage, stranger);
    expect(ledger.takeChanged()!.hosts).toEqual([expect.objectContaining({ bytes_up: 7, bytes_down: 70 })]);
  });

  it('reports only hosts changed since the last take, and nothing when nothing changed', () => {
    const ledger = ledgerAt({ now: T0 });
    ledger.note(decision('allowed', 'a.test'));
    ledger.note(decision('allowed', 'b.test'));
    ledger.takeChanged();
    expect(ledger.takeChanged()).toBeUndefined();
    ledger.note(decision('allowed', 'b.test'));
    // Counters run from the start: b.test's second request shows as 2, and a.test is not repeated.
    expect(ledger.takeChanged()!.hosts).toEqual([expect.objectContaining({ host: 'b.test', allowed: 2 })]);
  });

  it('caps the hosts per take and keeps the rest for the next one', () => {
    const ledger = ledgerAt({ now: T0 });
    for (let i = 0; i < 5; i++) ledger.note(decision('denied', `h${i}.test`));
    const first = ledger.takeChanged(2)!;
    expect(first.hosts.map((h) => h.host)).toEqual(['h0.test', 'h1.test']);
    expect(first.pending).toBe(3);
    expect(ledger.takeChanged(2)!.pending).toBe(1);
    expect(ledger.takeChanged(2)!.hosts.map((h) => h.host)).toEqual(['h4.test']);
  });

  it('shares one entry between the hosts past its limit, so invented names cannot grow it', () => {
    const ledger = ledgerAt({ now: T0 }, 3);
    for (let i = 0; i < 50; i++) ledger.note(decision('denied', `x${i}.test`));
    const hosts = ledger.takeChanged(100)!.hosts;
    expect(hosts.map((h) => h.host)).toEqual(['x0.test', 'x1.test', OTHER_HOSTS]);
    expect(hosts[2].denied).toBe(48);
  });

  it('keeps at most eight methods per host', () => {
    const ledger = ledgerAt({ now: T0 });
    for (let i = 0; i < 20; i++) ledger.note(decision('denied', 'a.test', `M${i}`));
    expect(ledger.takeChanged()!.hosts[0].methods).toHaveLength(8);
  });
});

describe('startTrafficSummaries', () => {
  afterEach(() => vi.useRealTimers());

  it('writes every held change when asked, and keeps its clock running after', () => {
    vi.useFakeTimers();
    const ledger = new TrafficLedger();
    const written: HostTraffic[][] = [];
    const summaries = startTrafficSummaries(ledger, (hosts) => written.push(hosts), 3000);
    ledger.note(decision('allowed', 'a.test'));
    summaries.writeNow();
    expect(written).toEqual([[expect.objectContaining({ host: 'a.test', allowed: 1 })]]);
    // Nothing held: asking again writes nothing.
    summaries.writeNow();
    expect(written).toHaveLength(1);
    ledger.note(decision('denied', 'b.test'));
    vi.advanceTimersByTime(3000);
    expect(written).toHaveLength(2);
    expect(written[1]).toEqual([expect.objectContaining({ host: 'b.test', denied: 1 })]);
    summaries.stop();
  });

  it('writes at most one summary per interval, only when something changed, and the rest on stop', () => {
    vi.useFakeTimers();
    const ledger = new TrafficLedger();
    const written: HostTraffic[][] = [];
    const summaries = startTrafficSummaries(ledger, (hosts) => written.push(hosts), 3000);
    for (let i = 0; i < 100; i++) ledger.note(decision('allowed', 'a.test'));
    vi.advanceTimersByTime(2999);
    expect(written).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(written).toHaveLength(1);
    expect(written[0][0].allowed).toBe(100);
    // Nothing changed: the clock ticks without writing.
    vi.advanceTimersByTime(30_000);
    expect(written).toHaveLength(1);
    ledger.note(decision('denied', 'b.test'));
    summaries.stop();
    expect(written).toHaveLength(2);
    expect(written[1]).toEqual([expect.objectContaining({ host: 'b.test', denied: 1 })]);
    // Stopped: no more ticks and a second stop writes nothing.
    ledger.note(decision('denied', 'c.test'));
    vi.advanceTimersByTime(30_000);
    summaries.stop();
    expect(written).toHaveLength(2);
  });

  it('writes every changed host on stop, over as many lines as the cap needs', () => {
    vi.useFakeTimers();
    const ledger = new TrafficLedger();
    const written: HostTraffic[][] = [];
    const summaries = startTrafficSummaries(ledger, (hosts) => written.push(hosts), 3000);
    for (let i = 0; i < 70; i++) ledger.note(decision('denied', `h${i}.test`));
    summaries.stop();
    expect(written.map((w) => w.length)).toEqual([32, 32, 6]);
  });
});
