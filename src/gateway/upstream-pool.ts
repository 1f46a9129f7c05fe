import { createHash } from 'node:crypto';
import { Agent as HttpAgent, type AgentOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { canonicalHost } from './egress-policy.js';
import { pinnedLookup } from './upstream-agent.js';

/**
 * Everything an admission check decided about where a request's connection
 * goes: the scheme, the host name (Host header, TLS server name and
 * certificate check), the port, the address the check vetted, the extra
 * roots the certificate was checked against, and whose credential it carries. A pooled socket serves only
 * requests admitted to the very same key, so reusing it never skips or
 * widens a check: each request is admitted on its own before it asks here.
 */
export interface UpstreamKey {
  secure: boolean;
  host: string;
  port: number;
  address: string;
  /** Extra trusted roots (tests' stand-ins); absent: the system's (and NODE_EXTRA_CA_CERTS). */
  ca?: string;
  /**
   * The credential route whose secret the requests carry; absent: the agent's own requests. A server
   * may tie what it learnt on a connection to it, so the two never share one.
   */
  route?: string;
}

export interface UpstreamPoolLimits {
  /** Idle sockets kept per key. */
  idlePerKey: number;
  /** How long a socket may sit idle; shorter than common servers' keep-alive timeouts. */
  idleMs: number;
  /** Keys with pooled agents at once; past it a request gets a connection of its own. */
  keys: number;
}

/** Under the keep-alive timeout Node and Apache servers default to, so the server rarely closes first. */
export const DEFAULT_POOL_LIMITS: UpstreamPoolLimits = { idlePerKey: 4, idleMs: 4_000, keys: 64 };

/**
 * Kept-alive upstream connections of one gateway (one bottle), one Node
 * agent per key. An agent leaves the pool when its last socket closes; idle
 * sockets close after `idleMs`, and all of them when the gateway stops.
 */
export class UpstreamPool {
  private readonly agents = new Map<string, HttpAgent>();
  private closed = false;

  constructor(private readonly limits: UpstreamPoolLimits = DEFAULT_POOL_LIMITS) {}

  /** The pooled agent for exactly this key, or with `fresh` one that opens a new connection and keeps none. */
  agent(key: UpstreamKey, fresh = false): HttpAgent {
    if (fresh || this.closed) return agentFor(key, { keepAlive: false });
    const name = nameOf(key);
    const pooled = this.agents.get(name);
    if (pooled) return pooled;
    if (this.agents.size >= this.limits.keys) return agentFor(key, { keepAlive: false });
    const options: AgentOptions = {
      keepAlive: true,
      maxFreeSockets: this.limits.idlePerKey,
      timeout: this.limits.idleMs,
      // The most recently used socket goes first, so the surplus ones age out.
      scheduling: 'lifo',
    };
    const agent: HttpAgent = agentFor(key, options, (socket) => this.forgetWhenEmpty(name, agent, socket));
    this.agents.set(name, agent);
    return agent;
  }

  /** Idle sockets across every key (tests and diagnostics). */
  idleSockets(): number {
    let count = 0;
    for (const agent of this.agents.values()) {
      for (const sockets of Object.values(agent.freeSockets)) count += sockets?.length ?? 0;
    }
    return count;
  }

  /** Closes every pooled socket, idle or not; later requests get connections of their own. */
  close(): void {
    this.closed = true;
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  /** The agent drops a closed socket in its own close listener, which runs after this one. */
  private forgetWhenEmpty(name: string, agent: HttpAgent, socket: Duplex): void {
    socket.once('close', () =>
      process.nextTick(() => {
        if (this.agents.get(name) === agent && isEmpty(agent)) this.agents.delete(name);
      }),
    );
  }
}

type ConnectionCallback = (err: Error | null, socket?: Duplex) => void;
type CreateConnection = (options: { host?: string; port?: number | string }, done: ConnectionCallback) => Duplex;

/**
 * An agent for one key. It connects only to its key's host and port (a caller that mixed keys up gets
 * an error instead of a connection); `opened` sees every socket it makes.
 */
function agentFor(key: UpstreamKey, options: AgentOptions, opened?: (socket: Duplex) => void): HttpAgent {
  const lookup = pinnedLookup(key.address);
  const agent = key.secure
    ? new HttpsAgent({ ...options, lookup, ...(key.ca ? { ca: key.ca } : {}) })
    : new HttpAgent({ ...options, lookup });
  const create = (agent.createConnection as CreateConnection).bind(agent);
  const createConnection: CreateConnection = (connection, done) => {
    if (canonicalHost(String(connection.host ?? '')) !== key.host || Number(connection.port) !== key.port) {
      done(new Error(`an upstream agent for ${key.host}:${key.port} was asked for another destination`));
      return undefined as unknown as Duplex;
    }
    const socket = create(connection, done);
    if (socket) opened?.(socket);
    return socket;
  };
  Object.assign(agent, { createConnection });
  return agent;
}

function isEmpty(agent: HttpAgent): boolean {
  const any = (group: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(group).some((list) => (list?.length ?? 0) > 0);
  return !any(agent.sockets) && !any(agent.freeSockets) && !any(agent.requests);
}

const caDigests = new Map<string, string>();

function nameOf(key: UpstreamKey): string {
  let ca = 'system';
  if (key.ca) {
    ca = caDigests.get(key.ca) ?? createHash('sha256').update(key.ca).digest('hex');
    caDigests.set(key.ca, ca);
  }
  return JSON.stringify([key.secure ? 'https' : 'http', key.host, key.port, key.address, ca, key.route ?? null]);
}
