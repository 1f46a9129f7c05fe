import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayLine } from './protocol.js';
import {
  OTHER_HOSTS,
  SUMMARY_MAX_HOSTS,
  SUMMARY_MAX_METHODS,
  UNKNOWN_HOST,
  type HostTraffic,
} from '../shared/traffic-summary.js';

/**
 * Per-host traffic of this gateway run: requests allowed and denied (from
 * the decision lines), bytes up and down (counted where traffic passes:
 * tunnels, proxied requests and their responses), the methods seen and when
 * the host was last seen. Only hosts whose counters changed are reported,
 * in summary lines at a bounded rate (startTrafficSummaries). The number of
 * hosts is bounded: past the limit, new hosts share one entry.
 */

/** Hosts tracked one by one; an agent inventing names cannot grow the gateway's memory past it. */
export const LEDGER_MAX_HOSTS = 1024;
/** The shortest time between two summary lines. */
export const TRAFFIC_SUMMARY_INTERVAL_MS = 10_000;

interface HostCounters {
  host: string;
  allowed: number;
  denied: number;
  up: number;
  down: number;
  methods: Set<string>;
  lastSeen: number;
}

export class TrafficLedger {
  private readonly hosts = new Map<string, HostCounters>();
  private readonly changed = new Set<HostCounters>();
  private readonly exchanges = new WeakMap<IncomingMessage, HostCounters>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxHosts = LEDGER_MAX_HOSTS,
  ) {}

  /** Counts an egress decision; audits are not counted (their request has its own decision) nor other lines. */
  note(line: GatewayLine): void {
    if (line.t !== 'egress' || line.decision === 'audited') return;
    const entry = this.entry(line.host ?? UNKNOWN_HOST);
    if (line.decision === 'allowed') entry.allowed += 1;
    else entry.denied += 1;
    if (line.method && entry.methods.size < SUMMARY_MAX_METHODS) entry.methods.add(line.method.slice(0, 32));
    this.touch(entry);
  }

  /** Counts an opened tunnel's bytes both ways; `sentAlready` is what the client sent before it was opened. */
  tunnel(host: string, client: Duplex, upstream: Duplex, sentAlready: number): void {
    const entry = this.entry(host);
    this.add(entry, sentAlready, 0);
    client.on('data', (chunk: Buffer) => this.add(entry, chunk.length, 0));
    upstream.on('data', (chunk: Buffer) => this.add(entry, 0, chunk.length));
  }

  /**
   * Counts a proxied request's body; its response is counted by `response`,
   * which the proxy calls for each upstream response. Called just before the
   * request is piped on, so the counting listener misses nothing.
   */
  exchange(host: string, req: IncomingMessage): void {
    const entry = this.entry(host);
    this.exchanges.set(req, entry);
    req.on('data', (chunk: Buffer) => this.add(entry, chunk.length, 0));
  }

  /** http-proxy's `proxyRes` listener: counts the response body of a request given to `exchange`. */
  readonly response = (proxyRes: IncomingMessage, req: IncomingMessage): void => {
    const entry = this.exchanges.get(req);
    if (entry) proxyRes.on('data', (chunk: Buffer) => this.add(entry, 0, chunk.length));
  };

  /** The counters of up to `max` hosts changed since the last take, and how many changed hosts remain. */
  takeChanged(max: number = SUMMARY_MAX_HOSTS): { hosts: HostTraffic[]; pending: number } | undefined {
    if (this.changed.size === 0) return undefined;
    const taken: HostTraffic[] = [];
    for (const entry of this.changed) {
      if (taken.length >= max) break;
      this.changed.delete(entry);
      taken.push({
        host: entry.host,
        allowed: entry.allowed,
        denied: entry.denied,
        bytes_up: entry.up,
        bytes_down: entry.down,
        methods: [...entry.methods],
        last_seen: new Date(entry.lastSeen).toISOString(),
      });
    }
    return { hosts: taken, pending: this.changed.size };
  }

  private add(entry: HostCounters, up: number, down: number): void {
    entry.up += up;
    entry.down += down;
    this.touch(entry);
  }

  private touch(entry: HostCounters): void {
    entry.lastSeen = this.now();
    this.changed.add(entry);
  }

  private entry(host: string): HostCounters {
    const known = this.hosts.get(host);
    if (known) return known;
    const name = this.hosts.size < this.maxHosts - 1 ? host.slice(0, 300) : OTHER_HOSTS;
    const shared = this.hosts.get(name);
    if (shared) return shared;
    const created: HostCounters = {
      host: name,
      allowed: 0,
      denied: 0,
      up: 0,
      down: 0,
      methods: new Set(),
      lastSeen: 0,
    };
    this.hosts.set(name, created);
    return created;
  }
}

export interface TrafficSummaries {
  /** Writes every change not yet written, however many lines it takes; the clock keeps running. */
  writeNow(): void;
  /** Stops the clock and writes what changed since the last summary (the final summary). */
  stop(): void;
}

/**
 * Writes a summary line at most every `intervalMs`, and only when a counter
 * changed; when asked (writeNow) and on stop, the changes not yet written,
 * however many lines they take.
 */
export function startTrafficSummaries(
  ledger: TrafficLedger,
  write: (hosts: HostTraffic[], pending: number) => void,
  intervalMs: number = TRAFFIC_SUMMARY_INTERVAL_MS,
): TrafficSummaries {
  const writeChanged = () => {
    const changed = ledger.takeChanged();
    if (changed) write(changed.hosts, changed.pending);
    return changed !== undefined && changed.pending > 0;
  };
  const timer = setInterval(writeChanged, intervalMs);
  timer.unref();
  let stopped = false;
  return {
    writeNow: () => {
      while (writeChanged());
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      while (writeChanged());
    },
  };
}
