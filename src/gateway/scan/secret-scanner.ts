import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import { secretFingerprint } from '../../shared/secret-fingerprint.js';
import type { RequestScanner, ScanFinding, ScannedRequest } from '../request-scanner.js';
import { ChunkInspector, type PatternFinder } from './body-inspector.js';
import { FrameInspector } from './frame-inspector.js';
import { heldSecretFinding, type FoundWhere } from './findings.js';
import { looksLikeEncodedLabels } from './hostname-entropy.js';
import { NeedleSet, type HeldSecret } from './needles.js';
import { percentDecoded } from './decoded-views.js';
import { findPattern, findPatternDecoded, SECRET_PATTERNS } from './patterns.js';
import { urlSignal } from './url-signals.js';
import { scanningBodyStream } from './request-body-stream.js';
import { scrubbingStream, scrubHeaderValue } from './response-scrubber.js';
import { SplitSecretWindow } from './split-window.js';

export type DlpMode = 'block' | 'audit';

/** The one header the gateway itself adds toward a route: the only place that route's secret belongs. */
export interface InjectedHeader {
  routeHost: string;
  header: string;
  value: string;
}

export interface SecretScannerOptions {
  /** Every secret the gateway holds for this bottle (routes, ssh keys) by id. */
  secrets: Record<string, string>;
  /** Decoy credentials by kind (aws_access_key_id...): never used, so any sighting is an alarm. */
  canaries: Record<string, string>;
  mode: DlpMode;
  /** Domains of the allowlist's `*.domain` entries: their labels are chosen by the agent. */
  wildcardDomains: string[];
  injected: InjectedHeader[];
  /** Keys the fingerprints; a new one per gateway run unless given. */
  fingerprintKey?: Buffer;
  now?: () => number;
}

/**
 * The gateway's RequestScanner: held secrets and canaries in every encoding (always blocked), credential
 * shapes and encoded host labels (blocked or audited by the bottle's `egress.dlp`), responses scrubbed of
 * held secrets, and a held secret sent a piece per request caught by a per-host window.
 */
export class SecretScanner implements RequestScanner {
  private readonly held: NeedleSet;
  private readonly heldInHostnames: NeedleSet;
  /** Only what the gateway adds is scrubbed from responses: canaries the agent has anyway. */
  private readonly routeSecrets: NeedleSet;
  private readonly split: SplitSecretWindow;
  private readonly key: Buffer;

  constructor(private readonly options: SecretScannerOptions) {
    this.key = options.fingerprintKey ?? randomBytes(32);
    const known = Object.entries(options.secrets).map(([id, value]) => this.heldSecret('known_secret', id, value));
    const canaries = Object.entries(options.canaries).map(([kind, value]) => this.heldSecret('canary', kind, value));
    this.held = new NeedleSet([...known, ...canaries]);
    this.heldInHostnames = new NeedleSet([...known, ...canaries], { caseFolded: true });
    this.routeSecrets = new NeedleSet(known);
    this.split = new SplitSecretWindow([...known, ...canaries], options.now);
  }

  /** A value as the log may show it: its class and keyed hash. */
  fingerprint(secretClass: string, value: string | Buffer): string {
    return secretFingerprint(secretClass, value, this.key);
  }

  checkHead(request: ScannedRequest): ScanFinding | undefined {
    const host = request.host.toLowerCase();
    const url = Buffer.from(request.url, 'latin1');
    const decodedUrl = Buffer.from(percentDecoded(request.url), 'latin1');
    const headers = this.scannedHeaders(request);
    const hostHit = this.heldInHostnames.first(Buffer.from(host, 'latin1'));
    if (hostHit) return heldSecretFinding(hostHit, 'hostname');
    for (const text of [url, decodedUrl]) {
      const hit = this.held.first(text);
      if (hit) return heldSecretFinding(hit, 'url');
    }
    for (const value of headers) {
      const hit = this.held.first(Buffer.from(value, 'latin1'));
      if (hit) return heldSecretFinding(hit, 'header');
    }
    const completed = this.split.record(host, [request.url, decodedUrl.toString('latin1'), ...headers].join('\n'));
    if (completed) return this.splitFinding(completed);
    return (
      this.patternIn(decodedUrl.toString('latin1'), 'url') ??
      this.urlSignal(request.url) ??
      this.headerPattern(headers) ??
      this.hostLabels(host)
    );
  }

  requestBody(request: ScannedRequest, onAudit: (finding: ScanFinding) => void): Transform {
    const patterns = request.toModel ? undefined : this.patternFinder;
    return scanningBodyStream({
      inspector: new ChunkInspector(this.held, patterns, 'body'),
      contentEncoding: request.headers['content-encoding'],
      onAudit,
      onEnd: (head) => {
        const completed = this.split.record(request.host.toLowerCase(), head.toString('latin1'));
        return completed ? this.splitFinding(completed) : undefined;
      },
    });
  }

  responseBody(_request: ScannedRequest, onScrub: (finding: ScanFinding) => void): Transform {
    return scrubbingStream(this.routeSecrets, onScrub);
  }

  /** Overwrites held secrets in a response's header values in place; the first one scrubbed, if any. */
  scrubResponseHeaders(_request: ScannedRequest, headers: IncomingHttpHeaders): ScanFinding | undefined {
    let first: ScanFinding | undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      const values = Array.isArray(value) ? value : [value];
      const scrubbed = values.map((v) => scrubHeaderValue(this.routeSecrets, v));
      const hit = scrubbed.find((s) => s.hit)?.hit;
      if (!hit) continue;
      first ??= { ...heldSecretFinding(hit, 'response'), action: 'audit' };
      headers[name] = Array.isArray(value) ? scrubbed.map((s) => s.value) : scrubbed[0].value;
    }
    return first;
  }

  /** One inspector per connection: a secret split over fragments or messages is read as one stream of payloads. */
  checkFrame(request: ScannedRequest, payload: Buffer, startsMessage: boolean): ScanFinding | undefined {
    let inspector = this.frameStreams.get(request);
    if (!inspector) {
      inspector = new FrameInspector(this.held, request.toModel ? undefined : this.patternFinder);
      this.frameStreams.set(request, inspector);
    }
    return inspector.inspect(payload, startsMessage);
  }

  private readonly frameStreams = new WeakMap<ScannedRequest, FrameInspector>();

  /** `text` with every held secret, canary and credential shape replaced by its class and fingerprint. */
  redactText(text: string): string {
    const buffer = Buffer.from(text, 'utf8');
    let out = '';
    let at = 0;
    for (const hit of this.held.all(buffer)) {
      out += buffer.subarray(at, hit.index).toString('utf8') + `[${hit.needle.secret.fingerprint}]`;
      at = hit.index + hit.needle.bytes.length;
    }
    out += buffer.subarray(at).toString('utf8');
    for (const pattern of SECRET_PATTERNS) {
      out = out.replace(new RegExp(pattern.regex.source, `${pattern.regex.flags}g`), (match) =>
        pattern.accept && !pattern.accept(match) ? match : `[${this.fingerprint(pattern.name, match)}]`,
      );
    }
    return out;
  }

  private readonly patternFinder: PatternFinder = (rule, match, where) => ({
    action: this.options.mode,
    reason: 'secret_pattern',
    detail: { class: 'pattern', rule, where, fingerprint: this.fingerprint(rule, match) },
  });

  private heldSecret(secretClass: HeldSecret['class'], rule: string, value: string): HeldSecret {
    return { class: secretClass, rule, fingerprint: this.fingerprint(secretClass, value), value: Buffer.from(value) };
  }

  private splitFinding(secret: HeldSecret): ScanFinding {
    return {
      action: 'block',
      reason: secret.class,
      detail: { class: secret.class, rule: secret.rule, where: 'split_requests', fingerprint: secret.fingerprint },
    };
  }

  /** Header values to scan: all but the one the gateway injects toward this request's own route. */
  private scannedHeaders(request: ScannedRequest): string[] {
    const values: string[] = [];
    for (const [name, value] of Object.entries(request.headers)) {
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
        const injected = this.options.injected.some(
          (i) => i.routeHost === request.routeHost && i.header === name && i.value === v,
        );
        if (!injected) values.push(v);
      }
    }
    return values;
  }

  private patternIn(text: string, where: FoundWhere): ScanFinding | undefined {
    const hit = findPattern(text) ?? findPatternDecoded(text);
    const held = hit && this.held.first(Buffer.from(hit.match, 'latin1'));
    if (held) return heldSecretFinding(held, where);
    return hit ? this.patternFinder(hit.pattern.name, hit.match, where) : undefined;
  }

  private headerPattern(values: string[]): ScanFinding | undefined {
    for (const value of values) {
      const finding = this.patternIn(value, 'header');
      if (finding) return finding;
    }
    return undefined;
  }

  private urlSignal(url: string): ScanFinding | undefined {
    const signal = urlSignal(url);
    return signal ? this.patternFinder(signal.rule, signal.match, 'url') : undefined;
  }

  private hostLabels(host: string): ScanFinding | undefined {
    const domain = this.options.wildcardDomains.find((d) => looksLikeEncodedLabels(host, d));
    if (!domain) return undefined;
    return {
      action: this.options.mode,
      reason: 'hostname_entropy',
      detail: {
        class: 'hostname_entropy',
        rule: `*.${domain}`,
        where: 'hostname',
        fingerprint: this.fingerprint('hostname', host),
      },
    };
  }
}
