import type { Command } from 'commander';
import { stateName } from '../../machines/index.js';
import { RuntimeFailure } from '../../shared/errors.js';
import { bottleHome } from '../../shared/paths.js';
import { describeRedisTarget, redisTarget, type RedisTarget } from '../../shared/redis-target.js';
import { currentState, openBottleLog } from '../../engine/bottle-log.js';
import { probeRedis } from '../../engine/redis.js';
import { pingRedis } from '../../engine/embedded.js';
import { embeddedServices, stopEmbeddedService } from '../local-worker.js';
import type { CliIO } from '../../shared/io.js';
import type { CliContext } from '../program.js';

/** States in which a bottle needs no worker: it waits for a resume, or it is over. */
const AT_REST = new Set(['preserved', 'failed', 'cleaned', 'discarded']);

export interface ShutdownOptions {
  force: boolean;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('shutdown')
    .description('stop the redis-server and worker this state folder started (refused while bottles run)')
    .option('--force', 'stop them even while bottles run (unwatched until a worker runs again)', false)
    .action((flags: ShutdownOptions) => cli.run(() => runShutdown(flags, cli.io)));
}

/**
 * `bottle shutdown [--force]`: stops the redis-server and the worker this
 * state folder started (by the pid files it wrote) and nothing else. While a
 * bottle runs, its lifecycle needs the worker (and the log it appends to), so
 * that is refused unless --force: a forced bottle keeps running unwatched
 * until a worker runs again, which the next state-changing command starts.
 */
export async function runShutdown(opts: ShutdownOptions, io: CliIO): Promise<number> {
  const services = embeddedServices();
  const running = services.filter((s) => s.running);
  if (running.length === 0) {
    for (const stale of services) await stopEmbeddedService(stale);
    io.stdout(`nothing to stop: no redis-server or worker started by ${bottleHome()} is running`);
    return 0;
  }
  const active = await activeBottles(targetsToCheck(services.some((s) => s.name === 'redis-server' && s.running)));
  if (active.length > 0) {
    const list = active.join(', ');
    if (!opts.force) {
      const [what, them] = active.length === 1 ? ['a bottle runs', 'it'] : [`${active.length} bottles run`, 'them'];
      throw new RuntimeFailure(`${what} (${list}); stop ${them} first (bottle stop <identity>) or pass --force`);
    }
    const keep = active.length === 1 ? 'keeps' : 'keep';
    io.stderr(`note: ${list} ${keep} running unwatched until a worker runs again (a start, resume or stop starts one)`);
  }
  // The worker first: it still writes to Redis while it hands its jobs back.
  let failed = false;
  for (const svc of services) {
    const outcome = await stopEmbeddedService(svc);
    if (outcome === 'stopped') io.stdout(`stopped ${svc.name} (pid ${svc.pid}, ${svc.where})`);
    if (outcome === 'still running') {
      failed = true;
      io.stderr(`bottle: ${svc.name} (pid ${svc.pid}) did not stop within 30 s of SIGTERM; see ${svc.where}`);
    }
  }
  return failed ? 1 : 0;
}

/** The Redis this CLI uses, and the embedded one when it runs (it may hold bottles from before REDIS_URL was set). */
function targetsToCheck(embeddedRunning: boolean): RedisTarget[] {
  const current = redisTarget();
  const embedded = redisTarget({ ...process.env, REDIS_URL: '' });
  return current.kind === 'url' && embeddedRunning ? [current, embedded] : [current];
}

/** Identities of bottles that are neither at rest nor over, in any reachable target; none from one that is down. */
async function activeBottles(targets: RedisTarget[]): Promise<string[]> {
  const active: string[] = [];
  for (const target of targets) {
    if (!(await pingRedis(target))) continue;
    const redis = probeRedis(target);
    try {
      const log = openBottleLog(redis);
      for (const entry of await log.listBottles()) {
        const { state, lastSeq } = await currentState(log, entry.identity);
        if (lastSeq > 0 && !AT_REST.has(stateName(state))) active.push(entry.identity);
      }
    } catch (err) {
      const where = describeRedisTarget(target);
      throw new RuntimeFailure(`could not list the bottles in ${where}: ${(err as Error).message}`);
    } finally {
      redis.disconnect();
    }
  }
  return active;
}
