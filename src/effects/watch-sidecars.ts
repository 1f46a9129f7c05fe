import type Docker from 'dockerode';
import type { EventData } from '../events/schema.js';
import type { BottlePlan } from '../plan/schema.js';
import { statusOf } from './docker/client.js';
import { exitFromStatus, waitForExit } from './docker/wait.js';
import type { EffectDeps, EffectHandler } from './types.js';

type SidecarExit = EventData<'sidecar.exited'>;
type Sidecar = Pick<SidecarExit, 'role' | 'container'>;

/** The containers that enforce a plan's policy: its gateway, and its network watch when the plan has one. */
export function sidecarsOf(plan: BottlePlan): Sidecar[] {
  const { gateway, netwatch } = plan.containers;
  return [
    { role: 'gateway', container: gateway },
    ...(netwatch ? [{ role: 'netwatch' as const, container: netwatch }] : []),
  ];
}

interface ContainerStatus {
  running: boolean;
  code: number;
}

/** A container that is gone counts as stopped, its status unknown (-1), as a vanished agent does. */
async function statusOfContainer(docker: Docker, name: string): Promise<ContainerStatus> {
  try {
    const { State } = await docker.getContainer(name).inspect();
    return { running: State.Running, code: State.ExitCode };
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
    return { running: false, code: -1 };
  }
}

/** Settles when the container stops or is gone; a wait the daemon broke off rejects. */
async function stopOf(docker: Docker, name: string, signal: AbortSignal): Promise<'stopped'> {
  try {
    await waitForExit(docker, name, signal);
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  return 'stopped';
}

/**
 * watch_sidecars: waits on the agent and its enforcing containers at once. When the agent
 * stops first there is nothing to report: its exit is watch_agent's, and the teardown that
 * follows removes the sidecars, which must not read as a loss. When a sidecar stops while
 * the agent still runs, its exit is reported (with any other sidecar found stopped by then),
 * so the machine stops the agent. What decides is what is stopped once the first wait
 * settles, so a retried watch (another worker, after a crash) reports the same thing, and
 * the job's cause keeps it from being appended twice. A wait on a killed daemon may never
 * settle, so the watch also ends when the worker's probe finds the daemon gone.
 */
export const watchSidecars =
  ({ docker }: EffectDeps): EffectHandler<'watch_sidecars'> =>
  async (_req, ctx) => {
    const { plan } = ctx;
    const sidecars = sidecarsOf(plan);
    const waits = new AbortController();
    try {
      const aborted = new Promise<'aborted'>((resolve) => {
        if (ctx.signal.aborted) resolve('aborted');
        ctx.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
      });
      const stops = [plan.containers.agent, ...sidecars.map((s) => s.container)].map((name) =>
        stopOf(docker, name, waits.signal),
      );
      const daemonLost = ctx.daemon?.lost(waits.signal) ?? new Promise<never>(() => undefined);
      if ((await Promise.race([...stops, aborted, daemonLost])) === 'aborted') return [];
      if (!(await statusOfContainer(docker, plan.containers.agent)).running) return [];
      const exits: SidecarExit[] = [];
      for (const sidecar of sidecars) {
        const { running, code } = await statusOfContainer(docker, sidecar.container);
        if (!running) exits.push({ ...sidecar, ...exitFromStatus(code) });
      }
      // Retried, not ended: a watch that ended here would leave the sidecars unwatched.
      if (exits.length === 0) throw new Error('a container wait ended, yet the agent and its sidecars all run');
      return exits.map((data) => ({ type: 'sidecar.exited' as const, data }));
    } finally {
      // The waits still open (the agent's, the sidecars' still running) end with the watch.
      waits.abort();
    }
  };
