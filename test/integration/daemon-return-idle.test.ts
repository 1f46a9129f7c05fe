import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostDaemon } from '../../src/effects/types.js';
import { runWorker, type RunningWorker } from '../../src/worker/worker.js';
import { fakeEffects } from '../support/fake-effects.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { until } from '../support/workers.js';

/**
 * A worker watching no bottle still notices its Docker daemon leave and come
 * back, and reconciles its host once per return (not on every answer after
 * it). The daemon here is a stand-in whose answer the test sets.
 */

let redis: TestRedis;
let worker: RunningWorker | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await worker?.close();
  await redis?.destroy();
});

describe('an idle worker whose daemon returns', () => {
  it('reconciles its host once per return', async () => {
    let answers = true;
    let asked = 0;
    let leftoverSweeps = 0;
    const daemon: HostDaemon = {
      reachable: async () => {
        asked += 1;
        return answers;
      },
      removeLeftovers: async () => {
        leftoverSweeps += 1;
        return { containers: [], networks: [] };
      },
    };
    const lines: string[] = [];
    worker = await runWorker({
      connect: () => redis.connect(),
      handlers: fakeEffects({ redis: redis.connect() }),
      daemon,
      log: (line) => lines.push(line),
    });
    // The reconcile at start swept once.
    expect(leftoverSweeps).toBe(1);

    answers = false;
    await until('the daemon found away', async () => lines.some((l) => l.includes('does not answer')));
    expect(leftoverSweeps).toBe(1);

    answers = true;
    await until('the host reconciled on the return', async () => leftoverSweeps === 2);
    // Several more answers, no return among them: no further reconcile.
    const askedAtReturn = asked;
    await until('three more answers', async () => asked >= askedAtReturn + 3);
    expect(leftoverSweeps).toBe(2);
    expect(lines.filter((l) => l.includes('answers again'))).toHaveLength(1);
  }, 120_000);
});
