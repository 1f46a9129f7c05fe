import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { claudeBinaryPath } from '../../images/build-context.js';
import { gatewayNodeCandidates } from '../../images/gateway-node.js';
import { buildId } from '../../shared/build-id.js';
import { chooseBackend } from '../../shared/backend.js';
import { RUNSC_INSTALL_HINT } from '../../shared/runtime.js';
import { formatCidr, overlaps, subnetPool, SUBNET_POOL_ENV, type Ipv4Cidr } from '../../shared/subnet-pool.js';
import { liveWorkers, type WorkerBeat } from '../../engine/workers.js';
import { probeRedis } from '../../engine/redis.js';
import { describeRedisTarget, redisTarget, type RedisTarget } from '../../shared/redis-target.js';
import { visibleText } from '../../shared/visible-text.js';
import { embeddedServices } from '../local-worker.js';
import {
  composePasswordCheck,
  composeRedisPasswordPath,
  composeRedisUrlHint,
  isAuthRefusal,
} from '../compose-redis.js';
import { dockerStatusOf, localDocker } from '../docker-probe.js';
import type { CliContext } from '../program.js';

type Status = 'ok' | 'FAIL' | 'warn';
export interface Check {
  status: Status;
  what: string;
  fix?: string;
  /** A start cannot work while this fails: doctor exits 1. */
  blocking?: boolean;
}

export const BASE_IMAGE = 'debian:bookworm-slim';
const REDIS_TIMEOUT_MS = 1500;

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('doctor')
    .description('check Docker, runsc, Redis, images and worker liveness')
    .action(() => cli.run(() => runDoctor(cli.io)));
}

/**
 * `bottle doctor`: checks what a start needs and says how to fix what is
 * missing. Every probe has a short timeout so it never hangs.
 */
export async function runDoctor(io: { stdout: (s: string) => void }, opts: DoctorOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  // An unsupported backend is a usage error (exit 2), as it is for start.
  const checks: Check[] = [{ status: 'ok', what: `backend ${chooseBackend(env)} (CLAUDE_BOTTLE_BACKEND)` }];
  checks.push(...(await dockerChecks()));
  checks.push(claudeBinaryCheck());
  checks.push(gatewayNodeCheck(env));
  checks.push(subnetPoolCheck(env));
  checks.push(...(await redisChecks(redisTarget(env), env)));
  const password = composePasswordCheck(redisTarget(env), env);
  if (password) checks.push(password);
  checks.push(...embeddedServiceChecks(env));

  return report(io, checks);
}

function report(io: { stdout: (s: string) => void }, checks: Check[]): number {
  for (const c of checks)
    io.stdout(`${c.status.padEnd(5)} ${c.what}${c.status !== 'ok' && c.fix ? `  (${c.fix})` : ''}\n`);
  return checks.some((c) => c.status === 'FAIL' && c.blocking) ? 1 : 0;
}

/** Where the gateway's Node binary is, or where the first start fetches it to. */
function gatewayNodeCheck(env: NodeJS.ProcessEnv): Check {
  try {
    const { vendor, cache } = gatewayNodeCandidates(env);
    const found = [vendor, cache].find((path) => existsSync(path));
    return found
      ? { status: 'ok', what: `gateway's Node present (${found})` }
      : {
          status: 'warn',
          what: `gateway's Node not fetched yet`,
          fix: `the first start fetches it into ${cache} with npm from the npm registry`,
        };
  } catch (err) {
    return { status: 'FAIL', what: `gateway's Node`, fix: (err as Error).message, blocking: true };
  }
}

/** Whether the daemon (as its `docker info` says) has gVisor's runsc, and how to get it when not. */
export function runscCheck(info: { Runtimes?: Record<string, unknown> }): Check {
  return info.Runtimes && 'runsc' in info.Runtimes
    ? { status: 'ok', what: 'gVisor runtime runsc registered (bottles run under runsc)' }
    : {
        status: 'warn',
        what: 'gVisor runtime runsc not registered: bottles run under runc, on the host kernel without gVisor',
        fix: `${RUNSC_INSTALL_HINT}; or run scripts/setup-env.sh from a checkout`,
      };
}

async function dockerChecks(): Promise<Check[]> {
  // The Docker client loads here, when its checks run: with what it loads, it is a large part of a second.
  const docker = await localDocker();
  let version: { Version?: string; ApiVersion?: string };
  try {
    version = await withTimeout(docker.version(), 5000, 'Docker did not answer within 5 s');
  } catch (err) {
    return [
      {
        status: 'FAIL',
        what: `Docker reachable`,
        fix: `${(err as Error).message}; start dockerd (scripts/setup-env.sh) or set DOCKER_HOST`,
        blocking: true,
      },
    ];
  }
  const checks: Check[] = [
    { status: 'ok', what: `Docker reachable (Engine ${version.Version ?? '?'}, API ${version.ApiVersion ?? '?'})` },
  ];

  const info = (await docker.info().catch(() => ({}))) as { Runtimes?: Record<string, unknown> };
  checks.push(runscCheck(info));

  try {
    await docker.getImage(BASE_IMAGE).inspect();
    checks.push({ status: 'ok', what: `base image ${BASE_IMAGE} present` });
  } catch (err) {
    const missing = (await dockerStatusOf(err)) === 404;
    checks.push({
      status: 'FAIL',
      what: `base image ${BASE_IMAGE} ${missing ? 'missing' : `not inspectable: ${(err as Error).message}`}`,
      fix: 'nothing can be pulled here; build it locally with scripts/setup-env.sh (debootstrap + docker import)',
      blocking: true,
    });
  }
  return checks;
}

/** Host routes as /proc/net/route lists them (little-endian hex), without Docker's own bridges. */
function hostRoutes(): Array<{ iface: string; cidr: Ipv4Cidr }> {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const hexToInt = (hex: string) => Buffer.from(hex, 'hex').readUInt32LE(0);
  return text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter(([iface, destination, , , , , , mask]) => iface && destination && mask && !/^(br-|docker0$)/.test(iface))
    .map(([iface, destination, , , , , , mask]) => {
      const prefix = hexToInt(mask).toString(2).replace(/0/g, '').length;
      return { iface, cidr: { base: hexToInt(destination), prefix } };
    })
    .filter((route) => route.cidr.prefix > 0);
}

/** The bottle networks' pool must be valid and must not shadow a route the host already uses. */
function subnetPoolCheck(env: NodeJS.ProcessEnv): Check {
  let pool: Ipv4Cidr;
  try {
    pool = subnetPool(env);
  } catch (err) {
    return { status: 'FAIL', what: 'bottle network pool', fix: (err as Error).message, blocking: true };
  }
  const clashes = hostRoutes().filter((route) => overlaps(route.cidr, pool));
  if (clashes.length > 0) {
    const list = clashes.map((r) => `${formatCidr(r.cidr)} via ${r.iface}`).join(', ');
    return {
      status: 'warn',
      what: `bottle network pool ${formatCidr(pool)} overlaps host routes (${list})`,
      fix: `set ${SUBNET_POOL_ENV} to a range this host does not use`,
    };
  }
  return { status: 'ok', what: `bottle network pool ${formatCidr(pool)} (no host route overlaps it)` };
}

function claudeBinaryCheck(): Check {
  try {
    return { status: 'ok', what: `Claude Code binary present (${claudeBinaryPath()})` };
  } catch (err) {
    return {
      status: 'FAIL',
      what: 'Claude Code binary missing in node_modules',
      fix: (err as Error).message,
      blocking: true,
    };
  }
}

async function redisChecks(target: RedisTarget, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const where = describeRedisTarget(target);
  if (target.kind === 'embedded' && !existsSync(target.socket)) {
    return [
      { status: 'warn', what: `Redis (embedded, ${where}) not started yet`, fix: '`bottle start` starts it' },
      {
        status: 'warn',
        what: 'no live worker',
        fix: '`bottle start` starts one with the embedded Redis; or run `bottle worker`',
      },
    ];
  }
  const redis = probeRedis(target);
  let lastError: Error | undefined;
  // Kept for the report: the failed command itself only says "Connection is closed".
  redis.on('error', (err: Error) => (lastError = err));
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      REDIS_TIMEOUT_MS,
      `no answer within ${REDIS_TIMEOUT_MS} ms`,
    );
  } catch (err) {
    redis.disconnect();
    const reason = lastError?.message ?? (err as Error).message;
    return [
      {
        status: 'FAIL',
        what: `Redis reachable (${where})`,
        fix:
          target.kind === 'embedded'
            ? `${reason}; remove the stale socket ${target.socket} and run \`bottle start\``
            : !isAuthRefusal(reason)
              ? `${reason}; check REDIS_URL or start redis-server`
              : existsSync(composeRedisPasswordPath(env))
                ? `${reason}; ${composeRedisUrlHint(target, env)}`
                : `${reason}; put the password in REDIS_URL: redis://:PASSWORD@host:port`,
        blocking: target.kind === 'url',
      },
    ];
  }
  try {
    const checks: Check[] = [{ status: 'ok', what: `Redis reachable (${where})` }];
    checks.push(await workerCheck(redis, target));
    return checks;
  } finally {
    redis.disconnect();
  }
}

/** The redis-server and worker this state folder started: they outlive the command that started them. */
function embeddedServiceChecks(env: NodeJS.ProcessEnv): Check[] {
  const services = embeddedServices(env);
  const lines: Check[] = services.map((s) => {
    if (s.running) return { status: 'ok', what: `embedded ${s.name} running (pid ${s.pid}, ${s.where})` };
    const stale = s.pid !== null ? ` (stale pid file ${s.pidFile}: pid ${s.pid} is not it)` : '';
    return { status: 'ok', what: `embedded ${s.name} not running${stale}` };
  });
  if (services.some((s) => s.running)) {
    const what = 'they keep running after each command; `bottle shutdown` stops them (refused while bottles run)';
    lines.push({ status: 'ok', what });
  }
  return lines;
}

async function workerCheck(redis: Redis, target: RedisTarget): Promise<Check> {
  const alive = await liveWorkers(redis);
  const named = (w: WorkerBeat) =>
    visibleText(`host ${w.hostId} (pid ${w.pid} on ${w.host ?? '?'}, ${w.bottles}/${w.capacity} bottles)`);
  const otherBuilds = alive
    .filter((w) => w.build !== buildId())
    .map((w) => `${named(w)} runs ${w.build || 'an unknown build'}`);
  const count = `${alive.length} live worker${alive.length === 1 ? '' : 's'}`;
  if (otherBuilds.length > 0) {
    return {
      status: 'warn',
      what: `${count}, not all on this build (${buildId()}): ${otherBuilds.join(', ')}`,
      fix:
        target.kind === 'embedded'
          ? 'the next `bottle start` restarts the local worker on this build'
          : 'restart `bottle worker` with this version',
    };
  }
  if (alive.length > 0) return { status: 'ok', what: `${count} (${alive.map(named).join(', ')}; build ${buildId()})` };
  return {
    status: 'warn',
    what: 'no live worker',
    fix:
      target.kind === 'embedded'
        ? '`bottle start` starts one with the embedded default; or run `bottle worker`'
        : 'run `bottle worker` on this Docker host',
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
