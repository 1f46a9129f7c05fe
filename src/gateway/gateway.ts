import type { Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Server as NetServer } from 'node:net';
import type { GatewayConfigInput, GatewaySecrets } from './config.js';
import { GatewayConfigError, validateGatewayFiles } from './config.js';
import { HOST_GATEWAY } from './host-gateway.js';
import type { GatewayContext, TunnelConnector } from './context.js';
import { createCredentialServer } from './credential-proxy.js';
import { DecisionLog } from './decision-log.js';
import type { GatewayLine } from './protocol.js';
import { canonicalHost, EgressPolicy, systemResolver, type Resolver } from './egress-policy.js';
import { createForwardProxy } from './forward-proxy.js';
import { EgressEntries } from './egress-entries.js';
import type { RequestScanner } from './request-scanner.js';
import { TokenBucket } from '../shared/token-bucket.js';
import { CapabilityBook } from './capability-book.js';
import {
  CAPABILITY_BURST,
  CAPABILITY_REFILL_WINDOW_MS,
  CAPABILITY_REFUSAL_BURST,
  CAPABILITY_REFUSAL_WINDOW_MS,
} from './capability-routes.js';
import { startDnsRefuser } from './dns.js';
import { AgentStatusReports } from './agent-status-reports.js';
import { STATUS_BURST, STATUS_REFILL_WINDOW_MS } from './status-routes.js';
import { scannerForGateway } from './scan/scanner-for-gateway.js';
import { startNetwatchReceiver } from './netwatch-reports.js';
import { DIRECT_RECORDS_PER_MINUTE } from '../shared/netwatch-report.js';
import type { Socket as UdpSocket } from 'node:dgram';
import type { SshAgentServer } from './ssh-agent.js';
import { startTrafficSummaries, TrafficLedger } from './traffic-ledger.js';
import { USAGE_LINE_INTERVAL_MS, UsageMeter } from './usage-meter.js';
import { RepeatedRouteCalls } from './repeated-route-calls.js';
import { UpstreamPool, type UpstreamPoolLimits } from './upstream-pool.js';

/** Lookups recorded per minute (and as a burst); a resolver retry loop must not flood the event log. */
const DNS_RECORDS_PER_MINUTE = 60;

export interface GatewayOptions {
  /** Replaces DNS; tests use it to prove a denied name is never looked up. */
  resolver?: Resolver;
  /** Opens CONNECT tunnels' upstream sockets; default net.connect. */
  connect?: TunnelConnector;
  /** Receives every egress and capability line (main.ts writes them to stdout). */
  onDecision?: (line: GatewayLine) => void;
  /** Human diagnostics; default stderr. */
  log?: (message: string) => void;
  /**
   * Address to listen on: the container passes its internal-network address (never every interface:
   * the egress bridge is reachable from the host); the default keeps tests on loopback.
   */
  listenHost?: string;
  /** Sockets bound and listening already (the container's listen.pl), used instead of binding the configured ports. */
  inheritedSockets?: InheritedSockets;
  /** The folder the worker writes decisions into (protocol.ts GATEWAY_DECISIONS_DIR); none: nothing is decided. */
  decisionsDir?: string;
  /** The network watch's report token (protocol.ts GATEWAY_NETWATCH_TOKEN_PATH); without it no reports are taken. */
  netwatchToken?: string;
  /** What looks inside inspected traffic (request-scanner.ts); absent: nothing is scanned. */
  scanner?: RequestScanner;
  /** Extra trusted roots for inspected HTTPS upstreams (tests' local stand-ins). */
  upstreamCa?: string;
  /** How many kept-alive upstream connections stay idle, and how long (upstream-pool.ts); tests shorten it. */
  upstreamPool?: UpstreamPoolLimits;
  /** Where the worker writes a raised budget limit (protocol.ts GATEWAY_BUDGET_PATH); none: it cannot be raised. */
  budgetFile?: string;
  /** false: no usage reading and no budget (the streaming benchmark's baseline); default true. */
  meterUsage?: boolean;
  /** How often usage lines may be written; default USAGE_LINE_INTERVAL_MS. */
  usageIntervalMs?: number;
  /** The rate limiters' clock, in milliseconds; tests hold it still. */
  now?: () => number;
  /** The shortest time between two traffic summary lines (traffic-ledger.ts). */
  summaryIntervalMs?: number;
}

/** File descriptors of listening sockets this process inherited, one per server. */
export interface InheritedSockets {
  proxy: number;
  credential: number;
}

export interface RunningGateway {
  proxyPort: number;
  credentialPort: number;
  /** The DNS server's UDP port, when the config asks for one. */
  dnsPort: number | undefined;
  /** The network watch's report port, when the config asks for one. */
  netwatchPort: number | undefined;
  /** The ssh-agent's port, when the bottle has ssh keys. */
  sshAgentPort: number | undefined;
  /** The certificate agents must trust for HTTPS to route hosts and inspected hosts; absent when nothing is. */
  interceptionCaPem: string | undefined;
  /** Takes in decisions written since the last look (main.ts calls it on SIGHUP). */
  reloadDecisions(): void;
  /** Writes the traffic counters and token usage its rate bounds hold back (main.ts: GATEWAY_REPORT_SIGNAL). */
  writeReports(): void;
  close(): Promise<void>;
}

/**
 * Starts both listeners. The config is validated here (the same check
 * main.ts applies to the files), so a test passing a plain object gets the
 * same defaults and refusals as the container.
 */
export async function startGateway(
  configInput: GatewayConfigInput,
  secretsInput: GatewaySecrets,
  opts: GatewayOptions = {},
): Promise<RunningGateway> {
  const { config, secrets } = validateGatewayFiles(configInput, secretsInput);
  const unresolved = Object.entries(config.extra_hosts).filter(([, target]) => target === HOST_GATEWAY);
  if (unresolved.length > 0) {
    const names = unresolved.map(([name]) => name).join(', ');
    throw new GatewayConfigError(`host-gateway is not resolved for ${names} (readGatewayFiles resolves it)`);
  }
  const listenHost = opts.listenHost ?? '127.0.0.1';
  let credentialPort = config.credential_port;
  const hostRoutes = new Map(config.routes.filter((r) => r.host).map((r) => [canonicalHost(r.host!), r]));

  const policy = new EgressPolicy(config.allow, config.extra_hosts, opts.resolver ?? systemResolver);
  const entries = new EgressEntries(config.entries);
  const interceptedNames = [...new Set([...hostRoutes.keys(), ...entries.inspectedNames()])];
  const emit = opts.onDecision ?? (() => {});
  const log = opts.log ?? ((message: string) => process.stderr.write(`gateway: ${message}\n`));
  const traffic = new TrafficLedger(opts.now);
  const decisions = new DecisionLog((line) => (traffic.note(line), emit(line)), undefined, {
    repeats: new RepeatedRouteCalls(opts.now),
    count: (line) => traffic.note(line),
  });
  const ctx: GatewayContext = {
    config,
    secrets,
    policy,
    entries,
    ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}),
    decisions,
    traffic,
    capabilities: new CapabilityBook(
      opts.decisionsDir,
      (entry, grant) => (grant ? entries.grant(grant.host, grant.port, grant) : policy.allow(entry)),
      emit,
      log,
    ),
    limiter: new TokenBucket(config.limits.requests_per_minute, opts.now),
    capabilityLimiter: new TokenBucket(CAPABILITY_BURST, opts.now, CAPABILITY_REFILL_WINDOW_MS),
    capabilityRefusalLimiter: new TokenBucket(CAPABILITY_REFUSAL_BURST, opts.now, CAPABILITY_REFUSAL_WINDOW_MS),
    statusReports: new AgentStatusReports(new TokenBucket(STATUS_BURST, opts.now, STATUS_REFILL_WINDOW_MS), decisions),
    dnsLimiter: new TokenBucket(DNS_RECORDS_PER_MINUTE, opts.now),
    directLimiter: new TokenBucket(DIRECT_RECORDS_PER_MINUTE, opts.now),
    connect: opts.connect ?? ((address, port) => netConnect({ host: address, port })),
    upstreams: new UpstreamPool(opts.upstreamPool),
    hostRoutes,
    anthropicRoute: config.routes.find((r) => r.role === 'anthropic-base-url'),
    // node-forge is a quarter of the gateway's load time: only bottles that intercept anything pay for it.
    interception:
      interceptedNames.length > 0
        ? (await import('./interception-ca.js')).createInterceptionCa(config.identity, interceptedNames)
        : undefined,
    credentialPort: () => credentialPort,
    log,
    // Tests may put their own scanner in its place.
    scanner: opts.scanner ?? scannerForGateway(config, secrets),
  };
  if (ctx.anthropicRoute && opts.meterUsage !== false) {
    ctx.usage = new UsageMeter({
      emit: (models) => decisions.usage(models),
      budgetSet: (limit) => emit({ t: 'budget_set', limit }),
      budget: config.budget,
      intervalMs: opts.usageIntervalMs ?? USAGE_LINE_INTERVAL_MS,
      budgetFile: opts.budgetFile,
      log,
    });
  }

  const forward = createForwardProxy(ctx);
  const credential = createCredentialServer(ctx);
  const inherited = opts.inheritedSockets;
  let dns: UdpSocket | undefined;
  let netwatch: UdpSocket | undefined;
  let sshAgent: SshAgentServer | undefined;
  try {
    await listen(forward.server, inherited ? { fd: inherited.proxy } : { port: config.proxy_port, host: listenHost });
    await listen(
      credential,
      inherited ? { fd: inherited.credential } : { port: config.credential_port, host: listenHost },
    );
    if (inherited) {
      // The sockets were bound for the ports the container was started with; they must be the configured ones.
      for (const [server, port] of [
        [forward.server, config.proxy_port],
        [credential, config.credential_port],
      ] as const) {
        const bound = (server.address() as AddressInfo).port;
        if (port !== 0 && bound !== port)
          throw new Error(`the inherited socket listens on port ${bound}, but the config says ${port}`);
      }
    }
    if (config.dns_port !== null) dns = await startDnsRefuser(ctx, listenHost, config.dns_port);
    if (config.netwatch_port !== null) {
      if (!opts.netwatchToken) throw new GatewayConfigError('netwatch_port is set but there is no netwatch token');
      netwatch = await startNetwatchReceiver(ctx, listenHost, config.netwatch_port, opts.netwatchToken);
    }
    if (config.ssh_agent) {
      // ssh2 is loaded only by bottles that hold ssh keys.
      const { createSshAgentServer, loadSshKeys } = await import('./ssh-agent.js');
      sshAgent = createSshAgentServer(loadSshKeys(config.ssh_agent.keys, secrets), ctx.log);
      await listen(sshAgent.server, { port: config.ssh_agent.port, host: listenHost });
    }
  } catch (err) {
    dns?.close();
    netwatch?.close();
    ctx.upstreams.close();
    await Promise.all([closeServer(forward.server), closeServer(credential), ...(sshAgent ? [sshAgent.close()] : [])]);
    throw err;
  }
  credentialPort = (credential.address() as AddressInfo).port;
  const summaries = startTrafficSummaries(
    traffic,
    (hosts, pending) => ctx.decisions.summary(hosts, pending),
    opts.summaryIntervalMs,
  );

  return {
    proxyPort: (forward.server.address() as AddressInfo).port,
    credentialPort,
    dnsPort: dns?.address().port,
    netwatchPort: netwatch?.address().port,
    sshAgentPort: sshAgent ? (sshAgent.server.address() as AddressInfo).port : undefined,
    interceptionCaPem: ctx.interception?.certificatePem,
    reloadDecisions: () => {
      ctx.capabilities.reload();
      ctx.usage?.reloadBudget();
    },
    writeReports: () => {
      summaries.writeNow();
      ctx.usage?.flush();
    },
    close: async () => {
      summaries.stop();
      ctx.usage?.close();
      forward.destroyTunnels();
      ctx.upstreams.close();
      dns?.close();
      netwatch?.close();
      await Promise.all([
        closeServer(forward.server),
        closeServer(credential),
        ...(sshAgent ? [sshAgent.close()] : []),
      ]);
    },
  };
}

function listen(server: Server | NetServer, where: { port: number; host: string } | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
