import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { DAEMON_AWAY } from '../../../src/worker/daemon-wait.js';
import { HostReconciler } from '../../../src/worker/reconcile-host.js';

/** A probe the test drives: each tell is one change the real probe would report. */
function drivenProbe() {
  const listeners: ((answering: boolean) => void)[] = [];
  return {
    subscribe: (listener: (answering: boolean) => void) => {
      listeners.push(listener);
      return () => undefined;
    },
    tell: (answering: boolean) => listeners.forEach((l) => l(answering)),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("a host's reconciler", () => {
  it('runs one reconcile at a time: a return of the daemon waits for the one at start', async () => {
    const order: string[] = [];
    let finishFirst!: () => void;
    let runs = 0;
    const reconciler = new HostReconciler(
      async () => {
        const run = ++runs;
        order.push(`begin ${run}`);
        if (run === 1) await new Promise<void>((resolve) => (finishFirst = resolve));
        order.push(`end ${run}`);
      },
      () => undefined,
    );
    const probe = drivenProbe();
    reconciler.follow(probe, () => []);
    const atStart = reconciler.now();
    await tick();
    probe.tell(true);
    await tick();
    expect(order).toEqual(['begin 1']);
    finishFirst();
    await atStart;
    await reconciler.settled();
    expect(order).toEqual(['begin 1', 'end 1', 'begin 2', 'end 2']);
  });

  it('on a return of the daemon, reconciles and then runs the effects that waited for it', async () => {
    const order: string[] = [];
    const lines: string[] = [];
    const queue = { promoteJobs: async () => void order.push('promote') } as unknown as Queue;
    const reconciler = new HostReconciler(
      async () => void order.push('reconcile'),
      (l) => lines.push(l),
    );
    const probe = drivenProbe();
    reconciler.follow(probe, () => [queue, queue]);
    probe.tell(true);
    await tick();
    await reconciler.settled();
    expect(order).toEqual(['reconcile', 'promote', 'promote']);
    expect(lines).toEqual(['the Docker daemon answers again: reconciling this host']);
  });

  it('says when the daemon leaves, and reconciles nothing then', async () => {
    let runs = 0;
    const lines: string[] = [];
    const reconciler = new HostReconciler(
      async () => void runs++,
      (l) => lines.push(l),
    );
    const probe = drivenProbe();
    reconciler.follow(probe, () => []);
    probe.tell(false);
    await reconciler.settled();
    expect(lines).toEqual([DAEMON_AWAY]);
    expect(runs).toBe(0);
  });

  it('says a failed reconcile on a return and takes the next one', async () => {
    let runs = 0;
    const lines: string[] = [];
    const reconciler = new HostReconciler(
      async () => {
        if (++runs === 1) throw new Error('redis went away');
      },
      (l) => lines.push(l),
    );
    const probe = drivenProbe();
    reconciler.follow(probe, () => []);
    probe.tell(true);
    await tick();
    await reconciler.settled();
    await tick();
    expect(lines).toContain('reconcile failed: redis went away');
    await reconciler.now();
    expect(runs).toBe(2);
  });

  it('fails its start when the reconcile at start fails', async () => {
    const reconciler = new HostReconciler(
      async () => {
        throw new Error('no store');
      },
      () => undefined,
    );
    await expect(reconciler.now()).rejects.toThrow('no store');
    await expect(reconciler.settled()).resolves.toBeUndefined();
  });
});
