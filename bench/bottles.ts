import { spawn, type ChildProcess } from 'node:child_process';
import type Docker from 'dockerode';
import { removeBottleResources } from '../src/effects/docker/remove-bottle.js';
import type { LifecycleEvent } from '../src/events/schema.js';
import { foldEvent, initialBottleState, stateName } from '../src/machines/index.js';
import { liveWorkers, type WorkerBeat } from '../src/engine/workers.js';
import { BOTTLE_BIN, REPO, type BottleHarness } from '../test/support/cli-harness.js';

/** What the benches that start many real bottles share: their agent, workers, outcome and teardown. */

/** An agent command that runs until stopped: bash traps SIGTERM, which PID 1 would otherwise ignore. */
export const SLEEPER = ['bash', '-c', 'trap "exit 143" TERM; sleep infinity & wait'];

export type Outcome =
  { kind: 'running'; startMs: number; runningAt: number } | { kind: 'ended'; state: string } | undefined;

/**
 * Where a bottle's log stands: running (when, and its own start: start_requested to the event that
 * folded it into running), ended some other way, or still on its way.
 */
export function outcomeOf(identity: string, events: LifecycleEvent[]): Outcome {
  let state = initialBottleState(identity);
  for (const event of events) {
    state = foldEvent(state, event).state;
    const name = stateName(state);
    if (name === 'running') {
      const runningAt = Date.parse(event.at);
      return { kind: 'running', startMs: runningAt - Date.parse(events[0].at), runningAt };
    }
    if (name === 'failed' || name === 'preserved' || name === 'cleaned') return { kind: 'ended', state: name };
  }
  return undefined;
}

/** `bottle worker ARGS` with the harness's environment plus ENV; ended by `stopWorker`. */
export function spawnWorker(h: BottleHarness, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [BOTTLE_BIN, 'worker', ...args], {
    cwd: REPO,
    env: { ...h.env, ...env },
    stdio: 'ignore',
  });
}

/** Waits until the live workers' heartbeats satisfy READY; fails naming WHAT, early if CHILD exits. */
export async function untilWorkersLive(
  h: BottleHarness,
  what: string,
  ready: (live: WorkerBeat[]) => boolean,
  child?: ChildProcess,
): Promise<void> {
  const redis = h.redis.connect();
  try {
    for (let i = 0; i < 600; i++) {
      if (ready(await liveWorkers(redis))) return;
      if (child && child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    redis.disconnect();
  }
  throw new Error(`${what} did not come up`);
}

/** SIGTERM, then SIGKILL if the worker has not exited after a grace period. */
export async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  if (!(await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 30_000))]))) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Removes what is left of a bottle on a daemon; returns how many containers and networks there
 * were. Retried: a bottle the worker is still tearing down (or, in a stuck round, still launching)
 * can hold a network a moment longer.
 */
export async function removeWhatIsLeft(docker: Docker, identity: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const left = await removeBottleResources(docker, identity);
      return left.containers + left.networks;
    } catch (err) {
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}
