import type { LifecycleEvent } from '../../events/schema.js';
import { UNKNOWN_HOST, type HostTraffic } from '../../shared/traffic-summary.js';

/**
 * What `bottle egress` and the dashboard show of a bottle's traffic, folded
 * from its event log: per host, requests allowed and denied, bytes up and
 * down, methods and last seen; then the latest decisions.
 *
 * Two records of the same traffic are merged. Decision events count each
 * request as it happens; the gateway's summaries (egress.summary) carry its
 * own counters since it started, bytes included, a few seconds late. Both
 * count the same requests of one gateway run from below, so a run's count is
 * the larger of the two, and runs (delimited by gateway.started) add up.
 */

export type EgressDecision = 'allowed' | 'denied' | 'audited';

export interface HostView {
  host: string;
  allowed: number;
  denied: number;
  bytes_up: number;
  bytes_down: number;
  methods: string[];
  last_seen: string | null;
}

export interface DecisionView {
  seq: number;
  at: string;
  decision: EgressDecision;
  host: string;
  port: number;
  method: string;
  reason: string;
  detail?: { class: string; rule: string; where: string; fingerprint?: string };
}

export interface EgressView {
  hosts: HostView[];
  /** The latest decisions, oldest first. */
  decisions: DecisionView[];
}

/** How many of the latest decisions are kept. */
export const LATEST_DECISIONS = 20;

interface RunHost {
  allowed: number;
  denied: number;
  methods: Set<string>;
  lastSeen: string | null;
  summary: HostTraffic | undefined;
}

const DECISION_OF_TYPE: Readonly<Record<string, EgressDecision>> = {
  'egress.allowed': 'allowed',
  'egress.denied': 'denied',
  'egress.audited': 'audited',
};

export class EgressFold {
  /** One map of hosts per gateway run, the current run last. */
  private readonly runs: Array<Map<string, RunHost>> = [new Map<string, RunHost>()];
  private readonly latest: DecisionView[] = [];

  constructor(private readonly keepDecisions: number = LATEST_DECISIONS) {}

  add(ev: LifecycleEvent): void {
    if (ev.type === 'gateway.started') {
      if (this.current().size > 0) this.runs.push(new Map<string, RunHost>());
      return;
    }
    if (ev.type === 'egress.summary') {
      for (const traffic of ev.data.hosts) {
        const host = this.host(traffic.host);
        host.summary = traffic;
        host.lastSeen = later(host.lastSeen, traffic.last_seen);
      }
      return;
    }
    const decision = DECISION_OF_TYPE[ev.type];
    if (decision === undefined) return;
    const data = (ev as Extract<LifecycleEvent, { type: 'egress.allowed' }>).data;
    if (decision !== 'audited') {
      // An audit's request has a decision of its own: counting the audit too would count it twice.
      const host = this.host(data.host || UNKNOWN_HOST);
      if (decision === 'allowed') host.allowed += 1;
      else host.denied += 1;
      if (data.method) host.methods.add(data.method);
      host.lastSeen = later(host.lastSeen, ev.at);
    }
    this.latest.push({
      seq: ev.seq,
      at: ev.at,
      decision,
      host: data.host,
      port: data.port,
      method: data.method,
      reason: data.reason,
      ...(data.detail ? { detail: data.detail } : {}),
    });
    if (this.latest.length > this.keepDecisions) this.latest.shift();
  }

  view(): EgressView {
    const hosts = new Map<string, HostView & { methodSet: Set<string> }>();
    for (const run of this.runs) {
      for (const [name, host] of run) {
        const total = hosts.get(name) ?? {
          host: name,
          allowed: 0,
          denied: 0,
          bytes_up: 0,
          bytes_down: 0,
          methods: [],
          methodSet: new Set<string>(),
          last_seen: null,
        };
        total.allowed += Math.max(host.allowed, host.summary?.allowed ?? 0);
        total.denied += Math.max(host.denied, host.summary?.denied ?? 0);
        total.bytes_up += host.summary?.bytes_up ?? 0;
        total.bytes_down += host.summary?.bytes_down ?? 0;
        for (const method of [...host.methods, ...(host.summary?.methods ?? [])]) total.methodSet.add(method);
        total.last_seen = later(total.last_seen, host.lastSeen);
        hosts.set(name, total);
      }
    }
    const shown = [...hosts.values()].map(({ methodSet, ...host }) => ({ ...host, methods: [...methodSet].sort() }));
    shown.sort((a, b) => b.allowed + b.denied - (a.allowed + a.denied) || a.host.localeCompare(b.host));
    return { hosts: shown, decisions: [...this.latest] };
  }

  private current(): Map<string, RunHost> {
    return this.runs[this.runs.length - 1];
  }

  private host(name: string): RunHost {
    const run = this.current();
    let host = run.get(name);
    if (!host) {
      host = { allowed: 0, denied: 0, methods: new Set(), lastSeen: null, summary: undefined };
      run.set(name, host);
    }
    return host;
  }
}

/** The view of a whole log at once. */
export function foldEgress(events: readonly LifecycleEvent[], keepDecisions?: number): EgressView {
  const fold = new EgressFold(keepDecisions);
  for (const ev of events) fold.add(ev);
  return fold.view();
}

function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}
