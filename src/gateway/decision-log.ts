import type { CapabilityRequest } from '../shared/capability.js';
import type { UsageByModel } from '../shared/token-usage.js';
import type { AllowReason, DenialReason, EgressDetail, EgressLine, GatewayLine, StatusLine } from './protocol.js';
import type { RepeatedRouteCalls } from './repeated-route-calls.js';
import type { HostTraffic } from '../shared/traffic-summary.js';

/**
 * The gateway's decisions, written as the numbered JSON lines of the gateway
 * protocol (protocol.ts). The launcher turns `egress` lines into
 * egress.allowed / egress.denied lifecycle events and `capability` lines into
 * capability.requested. Lines are built only from request metadata, never
 * from header values, so a secret cannot reach them.
 */

export interface EgressTarget {
  host: string | null;
  port: number | null;
  method: string | null;
}

/**
 * A decision that is counted but not written as its own line: a credential-route call repeating one
 * written a moment ago (repeated-route-calls.ts). It still reaches the traffic counters.
 */
export interface UnwrittenDecisions {
  repeats: RepeatedRouteCalls;
  count: (line: EgressLine) => void;
}

/** Numbers lines from 1 in emission order so a consumer can spot gaps and duplicates. */
export class DecisionLog {
  private sequence = 0;
  constructor(
    private readonly emit: (line: GatewayLine) => void,
    private readonly now: () => Date = () => new Date(),
    private readonly unwritten?: UnwrittenDecisions,
  ) {}

  /** `detail` says how it was let through when that matters (a tunnel the gateway does not read). */
  allowed(target: EgressTarget, reason: AllowReason, detail?: EgressDetail): void {
    if (reason === 'credential_route' && this.unwritten && !this.unwritten.repeats.shouldWrite(target)) {
      this.unwritten.count(this.egressLine(this.sequence, 'allowed', target, reason, detail));
      return;
    }
    this.egress('allowed', target, reason, detail);
  }

  denied(target: EgressTarget, reason: DenialReason, detail?: EgressDetail): void {
    this.egress('denied', target, reason, detail);
  }

  /** Inspection found something and, under `egress.dlp: "audit"`, let the request go on. */
  audited(target: EgressTarget, reason: DenialReason, detail: EgressDetail): void {
    this.egress('audited', target, reason, detail);
  }

  /** Per-host traffic counters (traffic-ledger.ts), in the same numbering as the decisions. */
  summary(hosts: HostTraffic[], pending: number): void {
    this.emit({ t: 'summary', n: ++this.sequence, hosts, pending, at: this.now().toISOString() });
  }

  capability(request: CapabilityRequest): void {
    this.emit({ t: 'capability', n: ++this.sequence, ...request, at: this.now().toISOString() });
  }

  /** Tokens per model since the previous usage line (numbered with the decisions, so a watcher skips seen ones). */
  usage(models: UsageByModel): void {
    this.emit({ t: 'usage', n: ++this.sequence, models, at: this.now().toISOString() });
  }

  /** The agent's own report of needing the operator or working again (already bounded by status-routes.ts). */
  status(report: Pick<StatusLine, 'state' | 'kind' | 'message'>): void {
    this.emit({ t: 'status', n: ++this.sequence, ...report, at: this.now().toISOString() });
  }

  private egress(
    decision: 'allowed' | 'denied' | 'audited',
    target: EgressTarget,
    reason: AllowReason | DenialReason,
    detail?: EgressDetail,
  ): void {
    this.emit(this.egressLine(++this.sequence, decision, target, reason, detail));
  }

  private egressLine(
    n: number,
    decision: 'allowed' | 'denied' | 'audited',
    target: EgressTarget,
    reason: AllowReason | DenialReason,
    detail?: EgressDetail,
  ): EgressLine {
    return {
      t: 'egress',
      n,
      decision,
      ...(target.host !== null ? { host: target.host } : {}),
      ...(target.port !== null ? { port: target.port } : {}),
      ...(target.method !== null ? { method: target.method } : {}),
      reason,
      ...(detail !== undefined ? { detail } : {}),
      at: this.now().toISOString(),
    };
  }
}
