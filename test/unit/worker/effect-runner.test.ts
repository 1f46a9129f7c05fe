import { DelayedError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { EffectContext, EffectHandlers } from '../../../src/effects/types.js';
import type { NewEvent } from '../../../src/events/schema.js';
import { initialBottleState, type EffectRequest } from '../../../src/machines/index.js';
import { EffectFailurePolicy } from '../../../src/worker/effect-failure.js';
import { EffectRunner } from '../../../src/worker/effect-runner.js';
import { Shutdown } from '../../../src/worker/shutdown.js';
import { fakeJob } from './fake-job.js';

const ID = 'dev-a1b2c';
const started = { type: 'agent.started', data: { container: 'c1' } } as unknown as NewEvent;
const request = (kind: string) => ({ kind, identity: ID, causedBySeq: 7, params: {} }) as unknown as EffectRequest;

type Handler = (req: EffectRequest, ctx: EffectContext) => Promise<NewEvent[]>;

function runnerWith(handler: Handler, shutdown = new Shutdown()) {
  const appended: { events: readonly NewEvent[]; cause?: string }[] = [];
  const lines: string[] = [];
  const disposed: string[] = [];
  const settled: unknown[] = [];
  const engine = {
    currentState: async (identity: string) => ({ state: initialBottleState(identity) }),
    apply: async (_identity: string, events: readonly NewEvent[], cause?: string) => appended.push({ events, cause }),
  };
  const runner = new EffectRunner({
    handlers: new Proxy({}, { get: () => handler }) as EffectHandlers,
    engine,
    context: (identity, _state, signal) =>
      ({
        identity,
        signal,
        uploads: { local: async (s: string) => s, dispose: async () => void disposed.push(identity) },
      }) as unknown as EffectContext,
    failure: {
      settle: async (job, token, req, err) => {
        settled.push(err);
        return new EffectFailurePolicy({ apply: engine.apply, shutdown, say: () => undefined }).settle(
          job,
          token,
          req,
          err,
        );
      },
    },
    shutdown,
    say: (line) => lines.push(line),
  });
  return { runner, appended, lines, disposed, settled };
}

describe('running an effect', () => {
  it("appends the handler's events under the effect's job id, so a retried job appends them once", async () => {
    const { runner, appended, lines, disposed } = runnerWith(async () => [started]);
    const { job } = fakeJob({ attemptsMade: 1 });
    expect(await runner.run(job, request('start_agent'), 'tok')).toEqual({ events: ['agent.started'] });
    expect(appended).toEqual([{ events: [started], cause: `effect.${ID}.7.start_agent` }]);
    expect(lines).toEqual([`effect start_agent ${ID} (caused by #7, attempt 2)`]);
    expect(disposed).toEqual([ID]);
  });

  it('counts a lifelong effect as a watched bottle while it runs, and only then', async () => {
    let release!: () => void;
    const { runner } = runnerWith(() => new Promise((resolve) => (release = () => resolve([]))));
    const watching = runner.run(fakeJob().job, request('watch_agent'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(runner.watching).toBe(1);
    release();
    await watching;
    expect(runner.watching).toBe(0);
  });

  it("does not count a bottle's sidecar watch as another bottle", async () => {
    let during = -1;
    const { runner } = runnerWith(async () => {
      during = runner.watching;
      return [];
    });
    await runner.run(fakeJob().job, request('watch_sidecars'));
    expect(during).toBe(0);
  });

  it('does not count an effect that is not lifelong', async () => {
    let during = -1;
    const { runner } = runnerWith(async () => {
      during = runner.watching;
      return [];
    });
    await runner.run(fakeJob().job, request('start_agent'));
    expect(during).toBe(0);
  });

  it('hands the job back when the handler returned because the worker stops, appending nothing', async () => {
    const shutdown = new Shutdown();
    const { runner, appended, disposed } = runnerWith(
      (_req, ctx) =>
        new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve([started]), { once: true })),
      shutdown,
    );
    const { job, delays } = fakeJob();
    const running = runner.run(job, request('watch_agent'), 'tok');
    await new Promise((resolve) => setImmediate(resolve));
    shutdown.begin();
    await expect(running).rejects.toBeInstanceOf(DelayedError);
    expect(appended).toEqual([]);
    expect(delays.map((d) => d.token)).toEqual(['tok']);
    expect(disposed).toEqual([ID]);
    expect(runner.watching).toBe(0);
  });

  it('gives a failed try to the failure policy and still disposes its uploads', async () => {
    const boom = new Error('boom');
    const { runner, settled, disposed } = runnerWith(async () => {
      throw boom;
    });
    await expect(runner.run(fakeJob().job, request('start_agent'))).rejects.toBe(boom);
    expect(settled).toEqual([boom]);
    expect(disposed).toEqual([ID]);
  });
});
