import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { mintCanaries } from '../src/plan/canaries.js';
import { median, percentile, type Row } from './stats.js';

/**
 * What inspecting allowlisted HTTPS costs, measured against today's end-to-end tunnel (`inspect: false`)
 * in the same run. The real gateway program (dist/gateway/gateway.cjs) runs as its own process on
 * loopback with a bottle's usual files: an Anthropic route and a GitHub host route with their secrets,
 * the three canaries a launch mints, `dlp: block`. One upstream, a local HTTPS server with a throwaway
 * CA the gateway trusts through NODE_EXTRA_CA_CERTS, is reached under two names: `inspected.test`
 * (inspected, scanned) and `tunnel.test` (`inspect: false`). A second gateway process, started from the
 * same compiled code with a pass-through scanner, shows what TLS termination alone costs.
 */

const REQUESTS = 1000;
const NEW_CONNECTION_REQUESTS = 300;
const TRANSFER_BYTES = 100 * 1024 * 1024;
const TRANSFER_ROUNDS = 3;
const CONCURRENT = 50;
const CONCURRENT_DOWNLOAD_BYTES = 20 * 1024 * 1024;
const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, items: Array.from({ length: 8 }, (_, i) => `item-${i}`) }));
/** Random bytes, as a pack file or a tarball carries: the scanner's patterns run over all of it. */
const BLOCK = randomBytes(1024 * 1024);

interface Upstream {
  server: Server;
  port: number;
  caPem: string;
  caFile: string;
}

interface GatewayProcess {
  child: ChildProcess;
  proxyPort: number;
  interceptionCa: string;
}

interface Target {
  label: string;
  host: string;
  gateway: GatewayProcess;
  ca: string;
}

function makeCertificates(dir: string): { caFile: string; key: string; cert: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  run(['req', '-x509', '-new', '-key', 'ca.key', '-days', '2', '-subj', '/CN=bench upstream CA', '-out', 'ca.pem']);
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf.key']);
  run(['req', '-new', '-key', 'leaf.key', '-subj', '/CN=inspected.test', '-out', 'leaf.csr']);
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=DNS:inspected.test,DNS:tunnel.test\nextendedKeyUsage=serverAuth\n',
  );
  run([
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'leaf.pem',
  ]);
  return {
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
    cert: readFileSync(join(dir, 'leaf.pem'), 'utf8'),
  };
}

/** GET /small, GET /download?bytes=N (streamed), POST /upload (counted, answered with the count). */
async function startUpstream(dir: string): Promise<Upstream> {
  const { caFile, key, cert } = makeCertificates(dir);
  const server = createHttpsServer({ key, cert, keepAliveTimeout: 60_000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://upstream');
    if (url.pathname === '/upload') {
      let received = 0;
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => res.end(JSON.stringify({ received })));
      return;
    }
    req.resume();
    if (url.pathname === '/download') {
      let left = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
      const more = () => {
        while (left > 0) {
          const piece = left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': SMALL_BODY.length });
    res.end(SMALL_BODY);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, port: (server.address() as AddressInfo).port, caPem: readFileSync(caFile, 'utf8'), caFile };
}

function writeGatewayFiles(dir: string, upstreamPort: number): { config: string; secrets: string } {
  const canaries = mintCanaries();
  const allow = [`inspected.test:${upstreamPort}`, `tunnel.test:${upstreamPort}`, 'api.github.com'];
  const config = {
    identity: 'bench-i7n3q',
    proxy_port: 0,
    credential_port: 0,
    allow,
    entries: [{ host: allow[0] }, { host: allow[1], inspect: false }, { host: allow[2] }],
    extra_hosts: { 'inspected.test': '127.0.0.1', 'tunnel.test': '127.0.0.1', 'anthropic.test': '127.0.0.1' },
    routes: [
      { id: 'anthropic', role: 'anthropic-base-url', upstream: 'http://anthropic.test:9', auth: 'oauth' },
      { id: 'github', host: 'api.github.com', auth: 'bearer' },
    ],
    dlp: { mode: 'block', canaries: Object.keys(canaries) },
    // The default (600 a minute) would refuse the benchmark's own thousands of requests.
    limits: { requests_per_minute: 1_000_000 },
  };
  const secrets = {
    anthropic: `sk-ant-oat01-${randomBytes(48).toString('base64url')}`,
    github: `ghp_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'x')}`,
    ...Object.fromEntries(Object.entries(canaries).map(([kind, value]) => [`canary.${kind}`, value])),
  };
  const paths = { config: join(dir, 'gateway.json'), secrets: join(dir, 'secrets.json') };
  writeFileSync(paths.config, JSON.stringify(config));
  writeFileSync(paths.secrets, JSON.stringify(secrets), { mode: 0o600 });
  return paths;
}

/**
 * The gateway program as a bottle runs it, or (scanner: 'pass-through') the same compiled gateway with a
 * scanner that looks at nothing, so TLS termination and request parsing are measured without the scan.
 */
function startGatewayProcess(
  files: { config: string; secrets: string },
  upstreamCaFile: string,
  scanner: 'default' | 'pass-through',
): Promise<GatewayProcess> {
  const root = resolve(import.meta.dirname, '..');
  const env = {
    ...process.env,
    GATEWAY_CONFIG: files.config,
    GATEWAY_SECRETS: files.secrets,
    NODE_EXTRA_CA_CERTS: upstreamCaFile,
  };
  const passThrough = `
    import { PassThrough } from 'node:stream';
    import { readGatewayFiles } from ${JSON.stringify(join(root, 'dist/gateway/config.js'))};
    import { startGateway } from ${JSON.stringify(join(root, 'dist/gateway/gateway.js'))};
    const { config, secrets } = readGatewayFiles(process.env.GATEWAY_CONFIG, process.env.GATEWAY_SECRETS);
    const scanner = {
      checkHead: () => undefined,
      requestBody: () => new PassThrough(),
      responseBody: () => new PassThrough(),
      checkFrame: () => undefined,
    };
    const gw = await startGateway(config, secrets, { scanner, onDecision: () => {}, log: () => {} });
    const ready = { t: 'ready', proxy_port: gw.proxyPort, interception_ca: gw.interceptionCaPem };
    process.stdout.write(JSON.stringify(ready) + '\\n');
  `;
  const args =
    scanner === 'default' ? [join(root, 'dist/gateway/gateway.cjs')] : ['--input-type=module', '--eval', passThrough];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.resume();
  return new Promise((done, fail) => {
    const lines = createInterface({ input: child.stdout! });
    // Decision lines keep coming; they are read and dropped so the gateway never blocks on its stdout.
    lines.on('line', (line) => {
      if (!line.includes('"ready"')) return;
      const ready = JSON.parse(line) as { proxy_port: number; interception_ca: string };
      done({ child, proxyPort: ready.proxy_port, interceptionCa: ready.interception_ca });
    });
    child.once('exit', (code) => fail(new Error(`gateway exited (${code}) before it was ready`)));
  });
}

/** CONNECT through the gateway's proxy port, then TLS trusting `ca` (the gateway's for inspected hosts). */
function connectThrough(target: Target, port: number): Promise<Socket> {
  return new Promise((done, fail) => {
    const raw = netConnect({ host: '127.0.0.1', port: target.gateway.proxyPort });
    raw.once('error', fail);
    raw.write(`CONNECT ${target.host}:${port} HTTP/1.1\r\nHost: ${target.host}:${port}\r\n\r\n`);
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) return fail(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      const secure = tlsConnect({ socket: raw, servername: target.host, ca: [target.ca], ALPNProtocols: ['http/1.1'] });
      secure.once('secureConnect', () => done(secure));
      secure.once('error', fail);
    };
    raw.on('data', onData);
  });
}

/** An agent whose connections are opened through the gateway: one kept alive, or a fresh one per request. */
function agentFor(target: Target, port: number, keepAlive: boolean): Agent {
  const agent = new Agent({ keepAlive, maxSockets: 1 });
  Object.assign(agent, {
    createConnection: (_opts: unknown, created: (err: Error | null, socket?: Socket) => void) => {
      connectThrough(target, port).then(
        (socket) => created(null, socket),
        (err: Error) => created(err),
      );
    },
  });
  return agent;
}

function exchange(
  agent: Agent,
  target: Target,
  port: number,
  path: string,
  body?: { bytes: number },
): Promise<{ ms: number; received: number }> {
  const t0 = performance.now();
  return new Promise((done, fail) => {
    const req = httpRequest(
      {
        agent,
        method: body ? 'POST' : 'GET',
        path,
        headers: { host: `${target.host}:${port}`, ...(body ? { 'content-length': body.bytes } : {}) },
      },
      (res: IncomingMessage) => {
        let received = 0;
        res.on('data', (chunk: Buffer) => (received += chunk.length));
        res.on('end', () => {
          if (res.statusCode !== 200) fail(new Error(`${target.label} ${path}: status ${res.statusCode}`));
          else done({ ms: performance.now() - t0, received });
        });
      },
    );
    req.on('error', fail);
    if (!body) return void req.end();
    let left = body.bytes;
    const more = () => {
      while (left > 0) {
        const piece = left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
        left -= piece.length;
        if (!req.write(piece)) return void req.once('drain', more);
      }
      req.end();
    };
    more();
  });
}

/** Latency of small GETs, the targets interleaved request by request so load on the machine hits all alike. */
async function latencies(targets: Target[], port: number, count: number, keepAlive: boolean) {
  const agents = targets.map((t) => agentFor(t, port, keepAlive));
  const samples = targets.map(() => [] as number[]);
  for (let i = 0; i < 50; i++) for (const [j, t] of targets.entries()) await exchange(agents[j], t, port, '/small');
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < targets.length; k++) {
      const j = (i + k) % targets.length;
      samples[j].push((await exchange(agents[j], targets[j], port, '/small')).ms);
    }
  }
  for (const agent of agents) agent.destroy();
  return samples;
}

/** MB/s of 100 MB each way, the targets alternating round by round. */
async function throughputs(targets: Target[], port: number) {
  const agents = targets.map((t) => agentFor(t, port, true));
  const up = targets.map(() => [] as number[]);
  const down = targets.map(() => [] as number[]);
  const mb = TRANSFER_BYTES / (1024 * 1024);
  for (let round = 0; round < TRANSFER_ROUNDS; round++) {
    for (const [j, t] of targets.entries()) {
      const d = await exchange(agents[j], t, port, `/download?bytes=${TRANSFER_BYTES}`);
      if (d.received !== TRANSFER_BYTES) throw new Error(`${t.label}: download got ${d.received} bytes`);
      down[j].push(mb / (d.ms / 1000));
      const u = await exchange(agents[j], t, port, '/upload', { bytes: TRANSFER_BYTES });
      up[j].push(mb / (u.ms / 1000));
    }
  }
  for (const agent of agents) agent.destroy();
  return { up: up.map(median), down: down.map(median) };
}

function pssKiB(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const match = /^Pss:\s+(\d+) kB/m.exec(rollup);
  if (!match) throw new Error(`no Pss in /proc/${pid}/smaps_rollup`);
  return Number(match[1]);
}

/** The gateway's PSS at its highest while CONCURRENT connections each download at once, sampled every 20 ms. */
async function concurrentPss(target: Target, port: number): Promise<number> {
  const pid = target.gateway.child.pid!;
  const agents = Array.from({ length: CONCURRENT }, () => agentFor(target, port, true));
  await Promise.all(agents.map((a) => exchange(a, target, port, '/small')));
  let peak = pssKiB(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, pssKiB(pid))), 20);
  try {
    await Promise.all(agents.map((a) => exchange(a, target, port, `/download?bytes=${CONCURRENT_DOWNLOAD_BYTES}`)));
    peak = Math.max(peak, pssKiB(pid));
  } finally {
    clearInterval(sampler);
    for (const agent of agents) agent.destroy();
  }
  return peak;
}

export async function benchInspection(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bottle-bench-inspection-'));
  const children: ChildProcess[] = [];
  const upstream = await startUpstream(dir);
  try {
    const files = writeGatewayFiles(dir, upstream.port);
    const scanned = await startGatewayProcess(files, upstream.caFile, 'default');
    children.push(scanned.child);
    const idlePss = pssKiB(scanned.child.pid!);
    const bare = await startGatewayProcess(files, upstream.caFile, 'pass-through');
    children.push(bare.child);
    const port = upstream.port;
    const tunnel: Target = { label: 'tunnel', host: 'tunnel.test', gateway: scanned, ca: upstream.caPem };
    const inspected: Target = {
      label: 'inspected',
      host: 'inspected.test',
      gateway: scanned,
      ca: scanned.interceptionCa,
    };
    const unscanned: Target = { label: 'no scanner', host: 'inspected.test', gateway: bare, ca: bare.interceptionCa };
    const targets = [tunnel, inspected, unscanned];

    const [kaTunnel, kaInspected, kaBare] = await latencies(targets, port, REQUESTS, true);
    const [ncTunnel, ncInspected] = await latencies([tunnel, inspected], port, NEW_CONNECTION_REQUESTS, false);
    const flow = await throughputs(targets, port);
    const tunnelPss = await concurrentPss(tunnel, port);
    const inspectedPss = await concurrentPss(inspected, port);
    const added = (p: number, xs: number[]) => percentile(xs, p) - percentile(kaTunnel, p);
    const mib = (kib: number) => kib / 1024;
    return [
      {
        metric: `keep-alive GET, p50 of ${REQUESTS}: inspected+scanned (baseline tunnel)`,
        value: median(kaInspected),
        baseline: median(kaTunnel),
        unit: 'ms',
      },
      {
        metric: `keep-alive GET, p99 of ${REQUESTS}: inspected+scanned (baseline tunnel)`,
        value: percentile(kaInspected, 99),
        baseline: percentile(kaTunnel, 99),
        unit: 'ms',
      },
      {
        metric: 'keep-alive GET, p50 added by inspection+scan',
        value: added(50, kaInspected),
        unit: 'ms',
        target: '<= 2',
      },
      { metric: 'keep-alive GET, p99 added by inspection+scan', value: added(99, kaInspected), unit: 'ms' },
      {
        metric: 'keep-alive GET, p50 added by inspection alone (pass-through scanner)',
        value: added(50, kaBare),
        unit: 'ms',
      },
      {
        metric: 'keep-alive GET, p99 added by inspection alone (pass-through scanner)',
        value: added(99, kaBare),
        unit: 'ms',
      },
      {
        metric: `new connection per GET (CONNECT+TLS), p50 of ${NEW_CONNECTION_REQUESTS}: inspected (baseline tunnel)`,
        value: median(ncInspected),
        baseline: median(ncTunnel),
        unit: 'ms',
      },
      {
        metric: `new connection per GET (CONNECT+TLS), p99 of ${NEW_CONNECTION_REQUESTS}: inspected (baseline tunnel)`,
        value: percentile(ncInspected, 99),
        baseline: percentile(ncTunnel, 99),
        unit: 'ms',
      },
      {
        metric: `100 MB download, median of ${TRANSFER_ROUNDS}: inspected+scanned (baseline tunnel)`,
        value: flow.down[1],
        baseline: flow.down[0],
        unit: 'MB/s',
        target: '>= 0.7x',
      },
      {
        metric: `100 MB upload, median of ${TRANSFER_ROUNDS}: inspected+scanned (baseline tunnel)`,
        value: flow.up[1],
        baseline: flow.up[0],
        unit: 'MB/s',
        target: '>= 0.7x',
      },
      {
        metric: '100 MB download: inspection alone, pass-through scanner (baseline tunnel)',
        value: flow.down[2],
        baseline: flow.down[0],
        unit: 'MB/s',
      },
      {
        metric: '100 MB upload: inspection alone, pass-through scanner (baseline tunnel)',
        value: flow.up[2],
        baseline: flow.up[0],
        unit: 'MB/s',
      },
      {
        metric: `gateway PSS, peak with ${CONCURRENT} inspected connections downloading (baseline idle)`,
        value: mib(inspectedPss),
        baseline: mib(idlePss),
        unit: 'MiB',
      },
      {
        metric: `gateway PSS, peak with ${CONCURRENT} tunnelled connections downloading (baseline idle)`,
        value: mib(tunnelPss),
        baseline: mib(idlePss),
        unit: 'MiB',
      },
    ];
  } finally {
    for (const child of children) child.kill('SIGTERM');
    upstream.server.closeAllConnections();
    await new Promise<void>((done) => upstream.server.close(() => done()));
    rmSync(dir, { recursive: true, force: true });
  }
}
