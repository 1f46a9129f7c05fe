import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { LifecycleEvent } from '../src/events/schema.js';
import { resourceNames } from '../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, type BottleHarness } from '../test/support/cli-harness.js';
import { execIn } from '../test/support/docker.js';
import { BENCH_DIR } from './egress-corpus-data.js';

/**
 * Sends raw HTTP exchanges from inside one real bottle (user node, its gateway's proxy) to a server on
 * this host that every name used is pinned to (`host-gateway`) and allowed at, so only inspection can
 * stop an exchange. The server records which exchanges arrived whole; the bottle's event log says
 * what the gateway decided. Nothing is sent to any other address: IP literals are on no allowlist and
 * are refused by the gateway before it connects anywhere.
 */
export interface Exchange {
  id: string;
  /** The name the gateway sees (for matching its decision). */
  host: string;
  /** Raw bytes written to the proxy, piece after piece (a short pause between: chunk boundaries). */
  pieces: Buffer[];
  /** WebSocket frames written once the upgrade is answered 101. */
  frames?: Buffer;
}

export interface ExchangeResult {
  id: string;
  /** The gateway's (or server's) status line, 'none' when the connection ended without one. */
  status: string;
  /** Arrived whole at the server (for WebSocket: every frame's bytes). */
  arrived: boolean;
  /** The gateway's decision recorded for it: egress.denied (class/rule/where, fingerprint), or undefined. */
  denied?: { reason: string; class?: string; rule?: string; where?: string; fingerprint?: string };
  alarm: boolean;
}

export const CLIENT_SCRIPT = readFileSync(join(BENCH_DIR, 'bottle-raw-client.pl'), 'utf8');
/** The header every exchange carries so the server can say which ones arrived. */
export const CASE_HEADER = 'x-bench-case';

export interface BenchServer {
  port: number;
  /** Case ids whose request (body included) the server read whole. */
  arrived: Set<string>;
  /** Bytes received after the upgrade, per case id. */
  upgradedBytes: Map<string, number>;
  stop(): Promise<void>;
}

export async function startBenchServer(): Promise<BenchServer> {
  const arrived = new Set<string>();
  const upgradedBytes = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrived.add(String(req.headers[CASE_HEADER] ?? ''));
      res.end('ok');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket: Socket) => {
    const id = String(req.headers[CASE_HEADER] ?? '');
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    upgradedBytes.set(id, 0);
    socket.on('data', (b: Buffer) => upgradedBytes.set(id, (upgradedBytes.get(id) ?? 0) + b.length));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    arrived,
    upgradedBytes,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A raw HTTP/1.1 request through the proxy (absolute-form), with the case header and a Content-Length. */
export function rawRequest(opts: {
  id: string;
  method: string;
  target: string;
  hostHeader?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  version?: '1.0' | '1.1';
}): Buffer {
  const lines = [`${opts.method} ${opts.target} HTTP/${opts.version ?? '1.1'}`];
  if (opts.hostHeader !== undefined) lines.push(`Host: ${opts.hostHeader}`);
  lines.push(`${CASE_HEADER}: ${opts.id}`);
  const headers = opts.headers ?? {};
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  const chunked = Object.entries(headers).some(([n, v]) => /^transfer-encoding$/i.test(n) && /chunked/i.test(v));
  if (opts.body && !chunked) lines.push(`Content-Length: ${opts.body.length}`);
  if (!Object.keys(headers).some((n) => /^connection$/i.test(n))) lines.push('Connection: close');
  lines.push('', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), opts.body ?? Buffer.alloc(0)]);
}

export function webSocketUpgrade(id: string, target: string, hostHeader: string): Buffer {
  return rawRequest({
    id,
    method: 'GET',
    target,
    hostHeader,
    headers: {
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      'Sec-WebSocket-Version': '13',
    },
  });
}

/** The bottle the exchanges run in: allowed at `allow`, each name in `hosts` pinned to this host. */
const ROUTE_TOKEN_ENV = 'BENCH_ROUTE_TOKEN';

export async function startBenchBottle(
  h: BottleHarness,
  opts: {
    allow: string[];
    hosts: string[];
    runtime: 'runsc' | 'runc';
    dlp?: 'block' | 'audit';
    /** A host credential route (bearer) whose secret the gateway holds and injects. */
    route?: { host: string; upstream: string; secret: string };
  },
): Promise<string> {
  const extra = Object.fromEntries(opts.hosts.map((host) => [host, 'host-gateway']));
  const route = opts.route && { host: opts.route.host, upstream: opts.route.upstream, token_env: ROUTE_TOKEN_ENV };
  const manifest = h.writeManifest({
    bottles: [
      {
        name: 'bench',
        egress: { allow: opts.allow, ...(opts.dlp ? { dlp: opts.dlp } : {}) },
        ...(route ? { cred_proxy: { routes: [{ ...route, auth: 'bearer' }] } } : {}),
        extra_hosts: { ...extra, ...PIN_DEFAULT_HOSTS },
      },
    ],
    agents: [{ name: 'sender', bottle: 'bench', command: ['sleep', '1800'] }],
  });
  const started = await h.cli(['--manifest', manifest, 'start', 'sender', '--detach'], {
    env: { CLAUDE_BOTTLE_RUNTIME: opts.runtime, ...(opts.route ? { [ROUTE_TOKEN_ENV]: opts.route.secret } : {}) },
    timeoutMs: 300_000,
  });
  if (started.code !== 0) throw new Error(`bench bottle did not start: ${started.stderr}`);
  const identity = identityFrom(started);
  await h.waitForEvent(identity, 'agent.started');
  return identity;
}

/** Runs a shell command in the bottle's agent container as its user. */
export async function inBottle(h: BottleHarness, identity: string, cmd: string[]): Promise<string> {
  const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
  const { output } = await execIn(agent, cmd, { user: 'node' });
  return output;
}

/** Sends every exchange from inside the bottle, in order, then matches the gateway's decisions to them. */
export async function runExchanges(
  h: BottleHarness,
  identity: string,
  server: BenchServer,
  exchanges: readonly Exchange[],
): Promise<ExchangeResult[]> {
  const input = exchanges
    .map((x) =>
      [x.id, x.pieces.map((p) => p.toString('base64')).join(','), x.frames?.toString('base64') ?? ''].join('\t'),
    )
    .join('\n');
  const script = Buffer.from(CLIENT_SCRIPT).toString('base64');
  const data = Buffer.from(input + '\n').toString('base64');
  const output = await inBottle(h, identity, [
    'bash',
    '-c',
    `echo ${script} | base64 -d > /tmp/raw-client.pl && echo ${data} | base64 -d > /tmp/exchanges.tsv && ` +
      `perl /tmp/raw-client.pl < /tmp/exchanges.tsv`,
  ]);
  const statuses = new Map(
    output
      .split('\n')
      .map((l) => l.replace(/^[^\w-]*/, '').split('\t'))
      .filter((p) => p.length === 3)
      .map(([id, status]) => [id, status]),
  );
  const log = await waitForDecisions(h, identity, exchanges.length);
  const denied = log.flatMap((e) => (e.type === 'egress.denied' ? [e.data] : []));
  const alarms = log.flatMap((e) => (e.type === 'egress.alarm' ? [e.data] : []));
  let next = 0;
  return exchanges.map((x) => {
    const upgraded = server.upgradedBytes.get(x.id);
    const arrived = x.frames ? upgraded !== undefined && upgraded >= x.frames.length : server.arrived.has(x.id);
    let decision: ExchangeResult['denied'];
    if (!arrived) {
      const names = hostAliases(x.host);
      let at = denied.findIndex((e, i) => i >= next && names.includes(e.host));
      // Decisions of tunnels and frames are written when their connection ends: possibly after later ones.
      if (at < 0) at = denied.findIndex((e) => names.includes(e.host));
      if (at >= 0) {
        const e = denied[at];
        next = Math.max(next, at + 1);
        decision = { reason: e.reason, ...e.detail };
      }
    }
    const alarm = decision?.fingerprint !== undefined && alarms.some((a) => a.fingerprint === decision.fingerprint);
    return { id: x.id, status: statuses.get(x.id) ?? 'none', arrived, denied: decision, alarm };
  });
}

/** The forms a name or literal may be recorded in: as sent, and as a URL parser canonicalises it. */
function hostAliases(host: string): string[] {
  const names = [host, host.replace(/^\[|\]$/g, '')];
  try {
    const parsed = new URL(`http://${host}/`).hostname;
    names.push(parsed, parsed.replace(/^\[|\]$/g, ''));
  } catch {
    // Not a URL host: only the name as sent.
  }
  return names;
}

/** The bottle's egress decisions once they have reached the log (they are written as the gateway makes them). */
async function waitForDecisions(h: BottleHarness, identity: string, _sent: number): Promise<LifecycleEvent[]> {
  let previous = -1;
  for (let i = 0; ; i++) {
    const shown = await h.cli(['events', identity, '--format', 'json']);
    const log = shown.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as LifecycleEvent);
    const count = log.filter((e) => e.type.startsWith('egress.')).length;
    // Settled: nothing new between two reads a second apart.
    if (count === previous || i >= 15) return log;
    previous = count;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
