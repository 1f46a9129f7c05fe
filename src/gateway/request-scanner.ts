import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import type { DenialReason, EgressDetail } from './protocol.js';

/**
 * The one interface between the paths that read traffic (plain HTTP, inspected
 * HTTPS, credential routes, WebSocket frames) and what looks inside it (secret,
 * canary and pattern detection). The paths call it; they never know which
 * detector found what, and the detectors never touch a socket.
 */

/** A request as the gateway reads it, before any DNS lookup or upstream connection. */
export interface ScannedRequest {
  host: string;
  port: number;
  method: string;
  /** The request target as sent (origin-form path and query, or absolute-form URL). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The credential route this request goes to, if any: its injected header is the one place its secret belongs. */
  routeHost?: string;
  /** Toward the `anthropic-base-url` route: the model reads code on purpose, so body patterns are exempt. */
  toModel?: boolean;
}

/** What inspection found: `block` refuses the request, `audit` records it and lets it go on. */
export interface ScanFinding {
  action: 'block' | 'audit';
  reason: DenialReason;
  detail: EgressDetail;
}

/** Raised by a body or frame scanner's stream when it finds something it must block. */
export class ScanBlockedError extends Error {
  constructor(readonly finding: ScanFinding) {
    super(`egress refused: ${finding.reason} (${finding.detail.rule} in ${finding.detail.where})`);
    this.name = 'ScanBlockedError';
  }
}

export interface RequestScanner {
  /** URL (host labels included), query and headers; the first finding, or undefined when clean. */
  checkHead(request: ScannedRequest): ScanFinding | undefined;
  /**
   * A pass-through for the request body: bytes flow on unchanged while they are scanned in bounded
   * memory; a blocking finding destroys the stream with ScanBlockedError. Audit findings go to `onAudit`.
   */
  requestBody(request: ScannedRequest, onAudit: (finding: ScanFinding) => void): Transform;
  /** A pass-through for a response headed for the agent that replaces every known secret before it arrives. */
  responseBody(request: ScannedRequest, onScrub: (finding: ScanFinding) => void): Transform;
  /**
   * One WebSocket data frame's payload on its way to the upstream, frames of a connection in order;
   * `startsMessage` is false for a continuation fragment of a message.
   */
  checkFrame(request: ScannedRequest, payload: Buffer, startsMessage: boolean): ScanFinding | undefined;
  /** Overwrites known secrets in a response's header values in place (an echoed Authorization); the first found. */
  scrubResponseHeaders?(request: ScannedRequest, headers: IncomingHttpHeaders): ScanFinding | undefined;
  /** Text recorded from the agent (a capability reason, a looked-up name), each secret in it named by fingerprint. */
  redactText?(text: string): string;
}
