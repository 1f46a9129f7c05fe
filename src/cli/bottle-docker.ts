import type { Redis } from 'ioredis';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { BottlePlan } from '../plan/schema.js';
import { RuntimeFailure } from '../shared/errors.js';
import { liveWorkers } from '../engine/workers.js';
import { localEngineId } from './docker-probe.js';

/**
 * A bottle's terminal and output are its agent container's, on its host's
 * Docker daemon: this machine reaches them when its own daemon is that host's
 * engine (by the engine id the host's workers publish), or, with no worker
 * saying, when the host is this machine.
 */
export async function reachesBottleDocker(redis: Redis, host: string): Promise<boolean> {
  const engines = new Set(
    (await liveWorkers(redis)).filter((w) => w.hostId === host && w.engineId).map((w) => w.engineId),
  );
  if (engines.size === 0) return host === hostname();
  const local = await localEngineId();
  return local !== undefined && engines.has(local);
}

/**
 * A bind-mounted working folder missing here may be a path on the bottle's
 * host, when that is another machine's Docker: its daemon checks it there.
 */
export async function cwdIsOnOtherHost(
  redis: Redis,
  opts: { cwd: string; copies: boolean; host: string },
): Promise<boolean> {
  if (opts.copies || existsSync(resolve(opts.cwd))) return false;
  return !(await reachesBottleDocker(redis, opts.host));
}

/** Why `what` (attach, logs) cannot be done from here, naming where it can. */
export function elsewhere(identity: string, plan: Pick<BottlePlan, 'host'>, what: string): string {
  return (
    `${identity} runs on host ${plan.host}, whose Docker daemon this machine does not reach; ` +
    `run \`bottle ${what} ${identity}\` on that host (or set DOCKER_HOST to its daemon)`
  );
}

export function refuseElsewhere(identity: string, plan: Pick<BottlePlan, 'host'>, what: string): never {
  throw new RuntimeFailure(elsewhere(identity, plan, what));
}
