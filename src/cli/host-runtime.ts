import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { RuntimeFailure } from '../shared/errors.js';
import { chooseRuntime, type ContainerRuntime } from '../shared/runtime.js';
import { liveWorkers, type WorkerBeat } from '../engine/workers.js';
import { localRuntime } from './docker-probe.js';

/** The Docker host a bottle is pinned to, and the runtime its daemon has. */
export interface PlanHost {
  id: string;
  runtime: ContainerRuntime;
}

const load = (w: WorkerBeat) => (w.capacity > 0 ? w.bottles / w.capacity : w.bottles);
const runtimeOf = (w: WorkerBeat) => (w.runtimes.length > 0 ? chooseRuntime(w.runtimes) : undefined);

/** The runtime a host's live workers say its daemon has; `fallback` (the bottle's last) when none says. */
export async function hostRuntime(redis: Redis, host: string, fallback: ContainerRuntime): Promise<ContainerRuntime> {
  const said = (await liveWorkers(redis)).filter((w) => w.hostId === host).map(runtimeOf);
  return said.find((r) => r !== undefined) ?? fallback;
}

/**
 * Where a new bottle runs: the host asked for (it must have a live worker),
 * else this machine's when a worker serves it, else the least-loaded live
 * host. The runtime comes from that host's heartbeat, so a start needs no
 * Docker client of its own; with no live worker at all, the local daemon is
 * asked and the bottle is planned for this machine.
 */
export async function chooseHost(redis: Redis | undefined, requested?: string): Promise<PlanHost> {
  const live = redis ? await liveWorkers(redis) : [];
  if (requested !== undefined) {
    const serving = live.filter((w) => w.hostId === requested);
    if (serving.length === 0 && redis) {
      throw new RuntimeFailure(
        `no live worker serves host ${JSON.stringify(requested)}; \`bottle hosts\` lists the live ones`,
      );
    }
    const runtime = serving.map(runtimeOf).find((r) => r !== undefined);
    return { id: requested, runtime: runtime ?? (await localRuntime()) };
  }
  const local = live.filter((w) => w.hostId === hostname());
  const candidates = local.length > 0 ? local : [...live].sort((a, b) => load(a) - load(b));
  const chosen = candidates.find((w) => runtimeOf(w) !== undefined);
  if (chosen) return { id: chosen.hostId, runtime: runtimeOf(chosen)! };
  return { id: hostname(), runtime: await localRuntime() };
}
