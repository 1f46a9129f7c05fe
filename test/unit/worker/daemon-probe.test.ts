import { setMaxListeners } from 'node:events';
import type Docker from 'dockerode';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EffectContext } from '../../../src/effects/types.js';
import { watchAgent } from '../../../src/effects/watch-agent.js';
import type { BottlePlan } from '../../../src/plan/schema.js';
import { DaemonNotAnswering, DaemonProbe } from '../../../src/worker/daemon-probe.js';
import { daemonAwayAfter } from '../../../src/worker/daemon-wait.js';
import { noUploads } from '../../support/no-uploads.js';

const timing = { answeringMs: 5000, awayMs: 2000 };
const MINUTE = 60_000;

/** A stand-in daemon whose answer the test sets, counting how often it is asked. */
function standInDaemon() {
  const daemon = {
    answers: true,
    asked: 0,
    reachable: async () => {
      daemon.asked += 1;
      return daemon.answers;
    },
  };
  return daemon;
}

function probeOf(daemon: ReturnType<typeof standInDaemon>) {
  const probe = new DaemonProbe(daemon.reachable, timing);
  const told: boolean[] = [];
  probe.subscribe((answering) => told.push(answering));
  return { probe, told };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("a worker's daemon probe", () => {
  it.each([0, 1, 100])('asks the daemon once per interval with %i subscribers', async (subscribers) => {
    const daemon = standInDaemon();
    const probe = new DaemonProbe(daemon.reachable, timing);
    for (let i = 0; i < subscribers; i++) probe.subscribe(() => undefined);
    const stop = new AbortController();
    for (let i = 0; i < subscribers; i++) void probe.lost(stop.signal);
    probe.start();
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(daemon.asked).toBe(MINUTE / timing.answeringMs);
    stop.abort();
    await probe.stop();
  });

  it('tells its subscribers once when the daemon stops answering and once when it answers again', async () => {
    const daemon = standInDaemon();
    const { probe, told } = probeOf(daemon);
    probe.start();
    await vi.advanceTimersByTimeAsync(3 * timing.answeringMs);
    // The first answer is no return: the worker reconciled when it started.
    expect(told).toEqual([]);
    daemon.answers = false;
    await vi.advanceTimersByTimeAsync(timing.answeringMs + 5 * timing.awayMs);
    expect(told).toEqual([false]);
    daemon.answers = true;
    await vi.advanceTimersByTimeAsync(timing.awayMs);
    await vi.advanceTimersByTimeAsync(5 * timing.answeringMs);
    expect(told).toEqual([false, true]);
    await probe.stop();
  });

  it('asks sooner while the daemon is away', async () => {
    const daemon = standInDaemon();
    daemon.answers = false;
    const { probe } = probeOf(daemon);
    probe.start();
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    const first = daemon.asked;
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(daemon.asked - first).toBe(MINUTE / timing.awayMs);
    await probe.stop();
  });

  it('counts the next answer as a return once an effect found the daemon away', async () => {
    const daemon = standInDaemon();
    const { probe, told } = probeOf(daemon);
    probe.start();
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    expect(probe.away()).toBe(true);
    // Already awaited: no news.
    expect(probe.away()).toBe(false);
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    expect(told).toEqual([true]);
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(told).toEqual([true]);
    await probe.stop();
  });

  it('a daemon found away by the probe is no news to an effect that finds it away too', async () => {
    const daemon = standInDaemon();
    daemon.answers = false;
    const { probe } = probeOf(daemon);
    probe.start();
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    expect(probe.away()).toBe(false);
    await probe.stop();
  });

  it("rejects a listener's lost() when the daemon stops answering, and forgets listeners that stopped", async () => {
    const daemon = standInDaemon();
    const probe = new DaemonProbe(daemon.reachable, timing);
    const stopped = new AbortController();
    let stoppedSettled = false;
    probe.lost(stopped.signal).catch(() => (stoppedSettled = true));
    stopped.abort();
    const lost = probe.lost(new AbortController().signal);
    const outcome = lost.catch((err: unknown) => err);
    probe.start();
    daemon.answers = false;
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    expect(await outcome).toBeInstanceOf(DaemonNotAnswering);
    expect(stoppedSettled).toBe(false);
    // The worker takes the probe's verdict for the daemon's absence, whatever the daemon says by then.
    expect(await daemonAwayAfter(await outcome, undefined)).toBe(true);
    await probe.stop();
  });

  it('asks no more once stopped', async () => {
    const daemon = standInDaemon();
    const { probe } = probeOf(daemon);
    probe.start();
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    await probe.stop();
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(daemon.asked).toBe(1);
  });
});

describe('watch_agent with the shared probe', () => {
  /** A Docker whose agent never exits and whose gateway prints nothing; it counts pings. */
  function quietDocker() {
    const counts = { pings: 0 };
    const docker = {
      ping: async () => {
        counts.pings += 1;
        return 'OK';
      },
      getContainer: () => ({
        wait: () => new Promise(() => undefined),
        logs: async () => {
          throw new Error('no gateway in this test');
        },
      }),
    } as unknown as Docker;
    return { docker, counts };
  }

  function watchContext(signal: AbortSignal, daemon: DaemonProbe): EffectContext {
    return {
      identity: 'bottle-test',
      plan: { containers: { agent: 'agent', gateway: 'gateway' } } as unknown as BottlePlan,
      observe: async () => undefined,
      progress: () => undefined,
      signal,
      lastEgressDecision: 0,
      secrets: { open: async () => undefined, discard: async () => undefined },
      uploads: noUploads,
      daemon,
    };
  }

  it.each([1, 10, 50])('with %i watched bottles, the daemon is asked once per interval', async (bottles) => {
    const { docker, counts } = quietDocker();
    const daemon = standInDaemon();
    const probe = new DaemonProbe(daemon.reachable, timing);
    probe.start();
    const shutdown = new AbortController();
    setMaxListeners(0, shutdown.signal);
    const watch = watchAgent({ docker });
    const watches = Array.from({ length: bottles }, () => watch({} as never, watchContext(shutdown.signal, probe)));
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect({ pings: counts.pings, asked: daemon.asked }).toEqual({ pings: 0, asked: MINUTE / timing.answeringMs });
    shutdown.abort();
    expect(await Promise.all(watches)).toEqual(Array.from({ length: bottles }, () => []));
    await probe.stop();
  });

  it("ends every watch with the probe's verdict when the daemon stops answering", async () => {
    const { docker } = quietDocker();
    const daemon = standInDaemon();
    const probe = new DaemonProbe(daemon.reachable, timing);
    probe.start();
    const watch = watchAgent({ docker });
    const outcomes = [1, 2, 3].map(() =>
      watch({} as never, watchContext(new AbortController().signal, probe)).catch((err: unknown) => err),
    );
    daemon.answers = false;
    await vi.advanceTimersByTimeAsync(timing.answeringMs);
    for (const outcome of await Promise.all(outcomes)) expect(outcome).toBeInstanceOf(DaemonNotAnswering);
    await probe.stop();
  });
});
