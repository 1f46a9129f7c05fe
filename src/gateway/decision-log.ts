/**
 * The gateway's machine-readable output: one JSON object per line on stdout.
 * The launcher turns `egress` lines into egress.allowed / egress.denied
 * lifecycle events and `capability` lines into capability.requested. These
 * objects are built only from request metadata, never from header values, so
 * a secret cannot reach them.
 */
export type DenialReason =
  | 'not_in_allowlist'
  | 'port_not_allowed'
  | 'private_address'
  | 'tls_sni_mismatch'
  | 'header_too_large'
  | 'rate_limited'
  | 'path_escape'
  | 'bad_request';
export type AllowReason = 'allowlisted' | 'credential_route';

export interface EgressLine {
  t: 'egress';
  n: number;
  decision: 'allowed' | 'denied';
  /** null when the request was refused before its target could be read (e.g. oversized headers). */
  host: string | null;
  port: number | null;
  method: string | null;
  reason: AllowReason | DenialReason;
  at: string;
}

export interface CapabilityLine {
  t: 'capability';
  n: number;
  request_id: string;
  kind: 'egress' | 'dockerfile';
  host: string | null;
  port: number | null;
  dockerfile: string | null;
  reason: string;
  at: string;
}

export interface ReadyLine {
  t: 'ready';
  proxy_port: number;
  credential_port: number;
  /** PEM of the per-run CA for HTTPS to credential-route hosts (public; the key stays in the gateway). */
  interception_ca?: string;
}

export type GatewayLine = EgressLine | CapabilityLine | ReadyLine;

export interface EgressTarget {
  host: string | null;
  port: number | null;
  method: string | null;
}

/** Numbers lines from 1 in emission order so a consumer can spot gaps and duplicates. */
export class DecisionLog {
  private sequence = 0;
  constructor(
    private readonly emit: (line: GatewayLine) => void,
    private readonly now: () => Date = () => new Date(),
  ) {}

  allowed(target: EgressTarget, reason: AllowReason): void {
    this.emit({ t: 'egress', n: ++this.sequence, decision: 'allowed', host: target.host, port: target.port, method: target.method, reason, at: this.now().toISOString() });
  }

  denied(target: EgressTarget, reason: DenialReason): void {
    this.emit({ t: 'egress', n: ++this.sequence, decision: 'denied', host: target.host, port: target.port, method: target.method, reason, at: this.now().toISOString() });
  }

  capability(request: Omit<CapabilityLine, 't' | 'n' | 'at'>): void {
    this.emit({ t: 'capability', n: ++this.sequence, ...request, at: this.now().toISOString() });
  }
}
