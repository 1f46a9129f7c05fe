import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ensureImage } from '../../src/effects/docker/images.js';
import { gatewayImageSource, imagePlan } from '../../src/images/sources.js';
import { processAlive } from '../../src/shared/process-alive.js';

const run = promisify(execFile);

/**
 * A second Docker daemon on this machine, standing in for another Docker host.
 *
 * It runs in a network namespace of its own (`ip netns`, entered with
 * `nsenter --net` so it keeps this machine's mounts and cgroups), with its own
 * unix socket, data root, exec root, pid file, `docker0` bridge (`--bip`) and
 * iptables: a dockerd that starts with iptables on flushes the DOCKER and
 * DOCKER-ISOLATION chains of the namespace it runs in, so in the main
 * namespace it would wipe the main daemon's rules under everyone's running
 * bottles. In its own namespace it keeps iptables on, as a real host would, and
 * both daemons may hand out the same bottle subnets without overlapping.
 *
 * A veth pair joins the namespace to this machine: `hostGatewayIp` is this
 * machine's end, and the daemon is started with `--host-gateway-ip` set to it,
 * so `host-gateway` in its containers is this machine, where tests run their
 * stand-in servers (listening on 0.0.0.0). Nothing routes the namespace any
 * further: images that need the network to build must be loaded from the main
 * daemon (`loadImages`); `debian:bookworm-slim` and the sidecar image (whose
 * build installs Debian packages) always are.
 *
 * The runtimes are those scripts/setup-env.sh registers (runsc, when installed),
 * passed in a config file of its own. Everything is removed by `stop()`, which
 * is idempotent and safe to call from afterAll whether or not start finished.
 *
 *   const b = await startSecondDaemon();
 *   spawn('bottle', ['worker', '--host', 'B'], { env: { ...env, DOCKER_HOST: b.dockerHost } });
 *   await b.restart({ downMs: 20_000 }); // dockerd gone for 20 s under running bottles
 *   await b.stop();
 */
export interface SecondDaemon {
  /** The daemon's unix socket. */
  socket: string;
  /** `unix://<socket>`: what a worker serving this host gets as DOCKER_HOST. */
  dockerHost: string;
  /** A dockerode client for the daemon. */
  docker: Docker;
  /** This machine as the daemon's containers reach it (`host-gateway`). */
  hostGatewayIp: string;
  /** The network namespace the daemon runs in. */
  netns: string;
  /** The running dockerd's pid; undefined while it is down. */
  pid(): number | undefined;
  /** The end of the daemon's log, for a failure message. */
  logTail(lines?: number): string;
  /** Copies images from the main daemon (`docker save | docker load`). */
  loadImages(tags: string[]): Promise<void>;
  /**
   * Stops dockerd (SIGTERM, or SIGKILL for a crash: its containers outlive it
   * until the new daemon reaps them), waits `downMs`, and starts it again on
   * the same data root, exec root, bridge and namespace.
   */
  restart(opts?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>;
  /** Ends dockerd and whatever it left running, then removes its folders, veth pair and namespace. */
  stop(): Promise<void>;
}

export interface SecondDaemonOptions {
  /** Images copied from the main daemon once the daemon answers; debian:bookworm-slim always. */
  images?: string[];
  /** dockerd's --shutdown-timeout: how long a SIGTERMed daemon gives containers to stop. */
  shutdownTimeoutSeconds?: number;
  /** How long to wait for the daemon to answer. */
  startTimeoutMs?: number;
}

const BASE_IMAGE = 'debian:bookworm-slim';
const MAIN_DAEMON_CONFIG = '/etc/docker/daemon.json';

export async function startSecondDaemon(opts: SecondDaemonOptions = {}): Promise<SecondDaemon> {
  const suffix = randomBytes(3).toString('hex');
  const netns = `cb-d2-${suffix}`;
  // Interface names are at most 15 characters.
  const hostLink = `cbd2-${suffix}-h`;
  const nsLink = `cbd2-${suffix}-n`;
  const runDir = `/run/cb-d2-${suffix}`;
  const execRoot = join(runDir, 'exec');
  const socket = join(runDir, 'docker.sock');
  const pidFile = join(runDir, 'docker.pid');
  const configFile = join(runDir, 'daemon.json');
  const logFile = join(runDir, 'dockerd.log');
  const dataRoot = `/var/tmp/cb-d2-${suffix}`;
  const link = await freeLinkSubnet();
  const bridgeCidr = `10.252.${randomInt(0, 256)}.1/24`;
  const docker = new Docker({ socketPath: socket });
  let child: ChildProcess | undefined;
  let stopped = false;
  const made = { netns: false, link: false };

  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const logTail = (lines = 20) => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const launch = async () => {
    const args = [
      `--net=/run/netns/${netns}`,
      'dockerd',
      '--config-file',
      configFile,
      '--host',
      `unix://${socket}`,
      '--data-root',
      dataRoot,
      '--exec-root',
      execRoot,
      '--pidfile',
      pidFile,
      '--bip',
      bridgeCidr,
      '--host-gateway-ip',
      link.host,
      '--iptables=true',
      ...(opts.shutdownTimeoutSeconds === undefined ? [] : ['--shutdown-timeout', String(opts.shutdownTimeoutSeconds)]),
    ];
    const log = openSync(logFile, 'a');
    try {
      // nsenter execs dockerd in place: the child's pid is the daemon's.
      child = spawn('nsenter', args, { stdio: ['ignore', log, log], detached: true });
    } finally {
      closeSync(log);
    }
    child.unref();
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (!alive()) throw new Error(`the second dockerd exited while starting:\n${logTail()}`);
      if (
        await docker.ping().then(
          () => true,
          () => false,
        )
      )
        return;
      if (Date.now() > deadline) throw new Error(`the second dockerd did not answer on ${socket}:\n${logTail()}`);
      await sleep(250);
    }
  };

  const halt = async (signal: 'SIGTERM' | 'SIGKILL') => {
    const daemon = child;
    if (daemon && alive()) {
      const exited = new Promise((resolve) => daemon.once('exit', resolve));
      daemon.kill(signal);
      // dockerd gives its containers --shutdown-timeout (default 15 s) before it kills them.
      const graceMs = ((opts.shutdownTimeoutSeconds ?? 15) + 30) * 1000;
      if (!(await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]))) {
        daemon.kill('SIGKILL');
        await exited;
      }
    }
    child = undefined;
  };

  /** The managed containerd and the shims of this daemon (their command lines name its exec root). */
  const leftovers = () => processesNaming(execRoot);

  const endLeftovers = async () => {
    for (const pid of leftovers()) signal(pid, 'SIGTERM');
    for (let i = 0; i < 50 && leftovers().length > 0; i++) await sleep(200);
    for (const pid of leftovers()) signal(pid, 'SIGKILL');
    for (let i = 0; i < 25 && leftovers().length > 0; i++) await sleep(200);
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    await halt('SIGTERM');
    await endLeftovers();
    unmountUnder([execRoot, dataRoot]);
    rmSync(dataRoot, { recursive: true, force: true });
    rmSync(runDir, { recursive: true, force: true });
    // Deleting one end of a veth pair deletes both.
    if (made.link) await run('ip', ['link', 'del', hostLink]).catch(() => undefined);
    if (made.netns) await run('ip', ['netns', 'del', netns]).catch(() => undefined);
  };

  // A test run that dies without afterAll still must not leave a daemon running.
  const onExit = () => {
    if (alive()) child?.kill('SIGTERM');
  };
  process.on('exit', onExit);

  try {
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    mkdirSync(dataRoot, { recursive: true, mode: 0o710 });
    // A key of its own: the engine id (`docker info`'s ID, in each worker's heartbeat) derives from it.
    const config = { runtimes: mainDaemonRuntimes(), 'deprecated-key-path': join(runDir, 'key.json') };
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    await run('ip', ['netns', 'add', netns]);
    made.netns = true;
    await run('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', nsLink]);
    made.link = true;
    await run('ip', ['link', 'set', nsLink, 'netns', netns]);
    await run('ip', ['addr', 'add', `${link.host}/30`, 'dev', hostLink]);
    await run('ip', ['link', 'set', hostLink, 'up']);
    const inNs = (...args: string[]) => run('ip', ['netns', 'exec', netns, 'ip', ...args]);
    await inNs('addr', 'add', `${link.peer}/30`, 'dev', nsLink);
    await inNs('link', 'set', nsLink, 'up');
    await inNs('link', 'set', 'lo', 'up');
    // No default route: the namespace reaches this machine on the link and nothing beyond it.
    await launch();
    const main = new Docker();
    await copyImages(main, docker, [BASE_IMAGE, await sidecarImage(main), ...(opts.images ?? [])]);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    socket,
    dockerHost: `unix://${socket}`,
    docker,
    hostGatewayIp: link.host,
    netns,
    pid: () => (alive() ? child?.pid : undefined),
    logTail,
    loadImages: (tags) => copyImages(new Docker(), docker, tags),
    async restart({ signal: how = 'SIGTERM', downMs = 0 } = {}) {
      if (stopped) throw new Error('the second dockerd was stopped for good; start another');
      await halt(how);
      // A clean stop ends containerd with the daemon; after a crash the new daemon adopts what is left.
      if (how === 'SIGTERM') await endLeftovers();
      if (downMs > 0) await sleep(downMs);
      await launch();
    },
    stop,
  };
}

/** The runtimes the main daemon was given by scripts/setup-env.sh. */
function mainDaemonRuntimes(): Record<string, unknown> {
  try {
    const config = JSON.parse(readFileSync(MAIN_DAEMON_CONFIG, 'utf8')) as { runtimes?: Record<string, unknown> };
    return config.runtimes ?? {};
  } catch {
    return {};
  }
}

/** A /30 for the veth pair that no address on this machine falls in. */
async function freeLinkSubnet(): Promise<{ host: string; peer: string }> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show']);
  const taken = [...stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]);
  for (let attempt = 0; attempt < 100; attempt++) {
    const third = randomInt(0, 256);
    const fourth = randomInt(0, 64) * 4;
    const block = [0, 1, 2, 3].map((i) => `10.251.${third}.${fourth + i}`);
    if (block.some((address) => taken.includes(address))) continue;
    return { host: block[1], peer: block[2] };
  }
  throw new Error('no free /30 in 10.251.0.0/16 for the second daemon');
}

/** The current sidecar image (gateway and network watch) on the main daemon, built there if it is missing. */
async function sidecarImage(main: Docker): Promise<string> {
  const source = gatewayImageSource();
  const plan = await imagePlan(source);
  await ensureImage(main, source, plan);
  return plan.tag;
}

async function copyImages(from: Docker, to: Docker, tags: string[]): Promise<void> {
  for (const tag of new Set(tags)) {
    const saved = await from.getImage(tag).get();
    const answer = (await to.loadImage(saved, { quiet: true })) as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of answer) text += chunk.toString();
    const failure = /"error(?:Detail)?":\s*(?:\{"message":)?"([^"]*)"/.exec(text);
    if (failure) throw new Error(`loading ${tag} into the second dockerd failed: ${failure[1]}`);
  }
}

function processesNaming(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.split('\0').some((arg) => arg.startsWith(path))) pids.push(Number(entry));
  }
  return pids.filter((pid) => pid !== process.pid && processAlive(pid));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Unmounts whatever is still mounted under the folders (deepest first), lazily if it is busy. */
function unmountUnder(roots: string[]): void {
  if (!existsSync('/proc/self/mounts')) return;
  const mountPoints = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((point): point is string => !!point && roots.some((root) => point === root || point.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mountPoints) {
    if (spawnSync('umount', [point], { stdio: 'ignore' }).status !== 0)
      spawnSync('umount', ['-l', point], { stdio: 'ignore' });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
