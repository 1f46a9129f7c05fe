import { describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../../src/events/schema.js';
import type { EventLog } from '../../../src/event-store/log.js';
import { foldEgress } from '../../../src/cli/egress-view/fold.js';
import { LiveEgressViews } from '../../../src/cli/egress-view/live.js';
import { egressTextLines, formatBytes } from '../../../src/cli/egress-view/render.js';
import { HTTP_ACTIVITY, NETWORK_ACTIVITY, isDecisionEvent, ocsfRecord } from '../../../src/cli/egress-view/ocsf.js';
import type { HostTraffic } from '../../../src/shared/traffic-summary.js';
import { OcsfRecordSchema } from '../../support/ocsf-schema.js';

let seq = 0;
const at = (second: number) => `2026-12-07T10:00:${String(second).padStart(2, '0')}.000Z`;

function decision(
  type: 'egress.allowed' | 'egress.denied' | 'egress.audited',
  host: string,
  method: string,
  second: number,
  extra: { reason?: string; detail?: { class: string; rule: string; where: string; fingerprint?: string } } = {},
): LifecycleEvent {
  const data = {
    n: seq + 1,
    host,
    port: 443,
    method,
    reason: extra.reason ?? 'allowlisted',
    ...(extra.detail ? { detail: extra.detail } : {}),
  };
  return { seq: ++seq, type, at: at(second), v: 1, data } as LifecycleEvent;
}

function summary(second: number, hosts: Array<Partial<HostTraffic> & { host: string }>): LifecycleEvent {
  const full = hosts.map((h) => ({
    allowed: 0,
    denied: 0,
    bytes_up: 0,
    bytes_down: 0,
    methods: [],
    last_seen: at(second),
    ...h,
  }));
  return { seq: ++seq, type: 'egress.summary', at: at(second), v: 1, data: { n: seq, hosts: full, pending: 0 } };
}

function gatewayStarted(): LifecycleEvent {
  return {
    seq: ++seq,
    type: 'gateway.started',
    at: at(0),
    v: 2,
    data: { container: 'c', ip: '10.0.0.2', legacy_launch: false },
  } as LifecycleEvent;
}

describe('foldEgress', () => {
  it('counts decisions per host with methods and last seen, and keeps the latest decisions', () => {
    const view = foldEgress([
      gatewayStarted(),
      decision('egress.allowed', 'a.test', 'GET', 1),
      decision('egress.allowed', 'a.test', 'POST', 2),
      decision('egress.denied', 'b.test', 'CONNECT', 3, { reason: 'not_in_allowlist' }),
    ]);
    expect(view.hosts).toEqual([
      { host: 'a.test', allowed: 2, denied: 0, bytes_up: 0, bytes_down: 0, methods: ['GET', 'POST'], last_seen: at(2) },
      { host: 'b.test', allowed: 0, denied: 1, bytes_up: 0, bytes_down: 0, methods: ['CONNECT'], last_seen: at(3) },
    ]);
    expect(view.decisions.map((d) => [d.decision, d.host, d.reason])).toEqual([
      ['allowed', 'a.test', 'allowlisted'],
      ['allowed', 'a.test', 'allowlisted'],
      ['denied', 'b.test', 'not_in_allowlist'],
    ]);
  });

  it("takes bytes from the gateway's summaries and the larger count of the two records in a run", () => {
    const view = foldEgress([
      gatewayStarted(),
      decision('egress.allowed', 'a.test', 'GET', 1),
      // The summary saw more than was recorded one by one (decisions summarised in a flood).
      summary(5, [{ host: 'a.test', allowed: 40, bytes_up: 100, bytes_down: 5000, methods: ['GET', 'PUT'] }]),
      decision('egress.allowed', 'a.test', 'GET', 6),
    ]);
    expect(view.hosts[0]).toMatchObject({ allowed: 40, bytes_up: 100, bytes_down: 5000, methods: ['GET', 'PUT'] });
    expect(view.hosts[0].last_seen).toBe(at(6));
  });

  it("replaces a host's earlier summary of the same gateway run and adds up runs", () => {
    const view = foldEgress([
      gatewayStarted(),
      summary(3, [{ host: 'a.test', allowed: 2, bytes_down: 10 }]),
      summary(6, [{ host: 'a.test', allowed: 3, bytes_down: 30 }]),
      gatewayStarted(),
      summary(9, [{ host: 'a.test', allowed: 1, bytes_down: 5 }]),
    ]);
    expect(view.hosts[0]).toMatchObject({ host: 'a.test', allowed: 4, bytes_down: 35 });
  });

  it('does not count an audit as a request of its own but lists it with its detail', () => {
    const detail = { class: 'pattern', rule: 'aws_access_key', where: 'body', fingerprint: 'fp:1234' };
    const view = foldEgress([
      decision('egress.allowed', 'a.test', 'POST', 1),
      decision('egress.audited', 'a.test', 'POST', 1, { reason: 'secret_pattern', detail }),
    ]);
    expect(view.hosts[0]).toMatchObject({ allowed: 1, denied: 0 });
    expect(view.decisions[1]).toMatchObject({ decision: 'audited', detail });
  });

  it('keeps only the latest decisions', () => {
    const events = Array.from({ length: 30 }, (_, i) => decision('egress.denied', `h${i}.test`, 'GET', i % 60));
    const view = foldEgress(events, 5);
    expect(view.decisions.map((d) => d.host)).toEqual(['h25.test', 'h26.test', 'h27.test', 'h28.test', 'h29.test']);
    expect(view.hosts).toHaveLength(30);
  });
});

describe('egress text', () => {
  it('makes agent-chosen hosts and rule names visible', () => {
    const view = foldEgress([
      decision('egress.denied', 'evil\x1b[2J.test', 'GET', 1, {
        reason: 'secret_pattern',
        detail: { class: 'pattern', rule: 'x\u202e', where: 'url' },
      }),
    ]);
    const text = egressTextLines(view).join('\n');
    expect(text).not.toContain('\x1b');
    expect(text).not.toContain('\u202e');
    expect(text).toContain('evil\\x1b[2J.test');
  });

  it('formats bytes in 1000-based units', () => {
    expect([formatBytes(999), formatBytes(1500), formatBytes(25_000_000)]).toEqual(['999 B', '1.5 kB', '25 MB']);
  });
});

describe('OCSF export', () => {
  const fingerprint = 'sha256:4f2a9c';

  it('writes an HTTP request decision as HTTP Activity with its method, outcome and endpoints', () => {
    const ev = decision('egress.allowed', 'pypi.test', 'GET', 1);
    const record = ocsfRecord(ev as never, 'impl-ab12c', '0.1.0');
    expect(OcsfRecordSchema.safeParse(record).success).toBe(true);
    expect(record).toMatchObject({
      class_uid: HTTP_ACTIVITY,
      activity_id: 3,
      type_uid: 400203,
      action_id: 1,
      disposition_id: 1,
      severity_id: 1,
      time: Date.parse(at(1)),
      src_endpoint: { name: 'impl-ab12c' },
      dst_endpoint: { hostname: 'pypi.test', port: 443 },
      http_request: { http_method: 'GET', url: { hostname: 'pypi.test', port: 443 } },
    });
  });

  it('maps a denial with what inspection found to blocked, a message and the fingerprint, never more', () => {
    const detail = { class: 'canary', rule: 'aws_canary', where: 'header', fingerprint };
    const ev = decision('egress.denied', 'gh.test', 'POST', 2, { reason: 'canary', detail });
    const record = ocsfRecord(ev as never, 'impl-ab12c', '0.1.0');
    expect(OcsfRecordSchema.safeParse(record).success).toBe(true);
    expect(record).toMatchObject({
      action_id: 2,
      disposition_id: 2,
      disposition: 'Blocked',
      status_id: 2,
      status_detail: 'canary',
      severity_id: 5,
      is_alert: true,
      observables: [{ type_id: 99, value: fingerprint }],
      unmapped: { claude_bottle: { class: 'canary', rule: 'aws_canary', where: 'header', fingerprint } },
    });
    expect(record.message).toContain('canary aws_canary in the header');
  });

  it('writes an audit as allowed and logged', () => {
    const detail = { class: 'pattern', rule: 'jwt', where: 'body', fingerprint };
    const record = ocsfRecord(
      decision('egress.audited', 'a.test', 'PUT', 3, { reason: 'secret_pattern', detail }) as never,
      'impl-ab12c',
      '0.1.0',
    );
    expect(OcsfRecordSchema.safeParse(record).success).toBe(true);
    expect(record).toMatchObject({ activity_id: 7, action_id: 1, disposition_id: 17, disposition: 'Logged' });
  });

  it('writes DNS lookups, direct connections and unreadable requests as Network Activity', () => {
    const records = [
      decision('egress.denied', 'x.test', 'DNS', 1, { reason: 'dns_lookup' }),
      decision('egress.denied', '203.0.113.9', 'TCP', 1, { reason: 'direct_connection' }),
      decision('egress.denied', '', '', 1, { reason: 'header_too_large' }),
    ].map((ev) => ocsfRecord(ev as never, 'impl-ab12c', '0.1.0'));
    for (const record of records) {
      expect(OcsfRecordSchema.safeParse(record).error?.issues ?? []).toEqual([]);
      expect(record).toMatchObject({ class_uid: NETWORK_ACTIVITY, activity_id: 5, type_uid: 400105 });
      expect(record).not.toHaveProperty('http_request');
    }
  });

  it('maps an unusual HTTP method to Other and exports only decisions', () => {
    const record = ocsfRecord(decision('egress.allowed', 'a.test', 'PROPFIND', 1) as never, 'i-ab12c', '1');
    expect(record).toMatchObject({ class_uid: HTTP_ACTIVITY, activity_id: 99, type_uid: 400299 });
    expect(isDecisionEvent(summary(1, [{ host: 'a.test' }]))).toBe(false);
  });

  it('the schema check refuses a record missing what OCSF requires', () => {
    const record = ocsfRecord(decision('egress.allowed', 'a.test', 'GET', 1) as never, 'i-ab12c', '1');
    const { http_request: _, ...withoutRequest } = record;
    expect(OcsfRecordSchema.safeParse(withoutRequest).success).toBe(false);
    expect(OcsfRecordSchema.safeParse({ ...record, type_uid: 400201 }).success).toBe(false);
    expect(OcsfRecordSchema.safeParse({ ...record, metadata: { version: '1.4.0' } }).success).toBe(false);
  });
});

describe('LiveEgressViews', () => {
  it('folds only the events appended since its last read', async () => {
    const log: LifecycleEvent[] = [decision('egress.allowed', 'a.test', 'GET', 1)];
    const reads: number[] = [];
    const fake = {
      read: (_identity: string, from = 1) => {
        reads.push(from);
        return Promise.resolve(log.filter((e) => e.seq >= from));
      },
    } as unknown as EventLog;
    const views = new LiveEgressViews();
    expect((await views.read(fake, 'i-ab12c')).hosts[0]).toMatchObject({ host: 'a.test', allowed: 1 });
    log.push(decision('egress.allowed', 'a.test', 'GET', 2));
    expect((await views.read(fake, 'i-ab12c')).hosts[0]).toMatchObject({ allowed: 2 });
    expect(reads).toEqual([1, log[0].seq + 1]);
  });
});
