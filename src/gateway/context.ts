import type { Socket } from 'node:net';
import type { CapabilityBook } from './capability-book.js';
import type { GatewayConfig, GatewayRoute, GatewaySecrets } from './config.js';
import type { DecisionLog } from './decision-log.js';
import type { EgressEntries } from './egress-entries.js';
import type { EgressPolicy } from './egress-policy.js';
import type { InterceptionCa } from './interception-ca.js';
import type { RequestScanner } from './request-scanner.js';
import type { TrafficLedger } from './traffic-ledger.js';
import type { AgentStatusReports } from './agent-status-reports.js';
import type { TokenBucket } from '../shared/token-bucket.js';
import type { UsageMeter } from './usage-meter.js';
import type { UpstreamPool } from './upstream-pool.js';

/** Opens the TCP connection behind a CONNECT tunnel; injectable so tests can observe or refuse it. */
export type TunnelConnector = (address: string, port: number) => Socket;

/** What both listeners share: one policy, one rate budget, one numbered decision stream. */
export interface GatewayContext {
  config: GatewayConfig;
  secrets: GatewaySecrets;
  policy: EgressPolicy;
  /** Which allowlisted hosts are inspected, and their method and path rules (egress-entries.ts). */
  entries: EgressEntries;
  /** Extra roots for inspected upstreams' certificates (tests' local stand-ins); absent: the system's. */
  upstreamCa?: string;
  decisions: DecisionLog;
  limiter: TokenBucket;
  /** Capability requests' own budget: asking the operator is rare, and each ask lands in the event log. */
  capabilityLimiter: TokenBucket;
  /** Refused capability requests' budget, so a malformed ask never spends an accepted one's. */
  capabilityRefusalLimiter: TokenBucket;
  /** This run's capability requests and the operator's decisions on them. */
  capabilities: CapabilityBook;
  /** The agent's reports of needing the operator or working again (`POST /_bottle/status`), with their budget. */
  statusReports: AgentStatusReports;
  /** How many DNS lookups are recorded; over it they are still refused, but not written. */
  dnsLimiter: TokenBucket;
  /** How many direct connections the network watch reports are recorded; over it they stay refused, unwritten. */
  directLimiter: TokenBucket;
  connect: TunnelConnector;
  /** Kept-alive upstream connections, each reused only for requests admitted to its exact key (upstream-pool.ts). */
  upstreams: UpstreamPool;
  /** Host routes by canonical host name. */
  hostRoutes: Map<string, GatewayRoute>;
  anthropicRoute: GatewayRoute | undefined;
  /** Present when there are host routes or inspected entries: terminates TLS for those hosts (tls-interception.ts). */
  interception: InterceptionCa | undefined;
  /** Per-host counters of this run, written out as summary lines (traffic-ledger.ts). */
  traffic: TrafficLedger;
  /** Looks inside what the gateway reads (request-scanner.ts); absent: nothing is scanned. */
  scanner?: RequestScanner;
  /** Counts the Messages API's usage on the anthropic-base-url route and holds the budget; absent: not metered. */
  usage?: UsageMeter;
  /** The credential port actually listened on (differs from config when tests ask for port 0). */
  credentialPort(): number;
  /** Human-readable diagnostics (stderr in the container). Never given a secret. */
  log: (message: string) => void;
}
