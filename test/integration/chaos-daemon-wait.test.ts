import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EffectContext, EffectHandlers } from '../../src/effects/types.js';
import type { EffectRequest } from '../../src/machines/index.js';
import { bottleStatus, stateName } from '../../src/machines/index.js';
import { mintIdentity } from '../../src/shared/identity.js';
import { currentState, openBottleLog, type BottleLog } from '../../src/engine/bottle-log.js';
import { commandJobId, EFFECT_ATTEMPTS, openQueue } from '../../src/engine/queues.js';
import type { HostDaemon } from '../../src/effects/types.js';
import { runWorker, type RunningWorker } from '../../src/worker/worker.js';
import { exitKey, fakeEffects } from '../support/fake-effects.js';
import { fakePlan } from '../support/fake-plan.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

/**
 * An effect whose Docker daemon is away waits for it: each try is recorded
 * (effect.failed, not permanent) but spends none of the effect's retries, and
 * when the daemon answers again the worker reconciles and runs the delayed
 * effect at once. The daemon here is a stand-in; the real daemon's restart is
 * in chaos.test.ts.
 */

let redis: TestRedis;
let worker: RunningWorker | undefined;
const reconciled: string[] = [];

/** The socket error dockerode passes through when nothing listens on the daemon's socket. */
function refused(): Error {
  const err = new Error('connect ECONNREFUSED /var/run/docker.sock');
  return Object.assign(err, { code: 'ECONNREFUSED', syscall: 'connect', address: '/var/run/docker.sock' });
}

const daemon: HostDaemon = {
  // It answers a ping at once, as a daemon back from a restart does, while the effect's own connects still fail.
  reachable: async () => true,
  removeLeftovers: async () => {
    reconciled.push('leftovers');
    return { containers: [], networks: [] };
  },
};

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await worker?.close();
  await redis?.destroy();
});

async function waitForState(log: BottleLog, identity: string, name: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { state } = await currentState(log, identity);
    if (stateName(state) === name) return;
    if (Date.now() > deadline) throw new Error(`${identity}: not ${name}; is ${bottleStatus(state)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('an effect whose Docker daemon is away', () => {
  it('waits for it with a visible failure per try, spending no retry, and runs when it returns', async () => {
    const base = fakeEffects({ redis: redis.connect() });
    const failuresWhileAway = EFFECT_ATTEMPTS + 1;
    let tries = 0;
    const createNetworks = base.create_networks;
    const handlers: EffectHandlers = {
      ...base,
      create_networks: async (req: EffectRequest<'create_networks'>, ctx: EffectContext) => {
        tries += 1;
        if (tries <= failuresWhileAway) throw refused();
        return createNetworks(req, ctx);
      },
    };
    worker = await runWorker({ connect: () => redis.connect(), handlers, concurrency: 4, daemon });
    reconciled.length = 0;
    const log = openBottleLog(redis.connect());
    const identity = mintIdentity('away');
    const queue = openQueue(redis.connect());
    const id = randomUUID();
    const event = { type: 'bottle.start_requested', data: { plan: fakePlan(identity) } };
    await queue.add('command', { identity, command_id: id, event }, { jobId: commandJobId(identity, id) });
    await queue.close();

    // More tries than an ordinary failure gets, none of them permanent.
    await waitForState(log, identity, 'running');
    expect(tries).toBe(failuresWhileAway + 1);

    const failed = (await log.read(identity)).filter((e) => e.type === 'effect.failed');
    expect(failed).toHaveLength(failuresWhileAway);
    for (const f of failed) expect(f.data).toMatchObject({ effect: 'create_networks', permanent: false });
    expect(new Set(failed.map((f) => (f.data as { attempt: number }).attempt)).size).toBe(failuresWhileAway);
    // The daemon's answer was noticed: the host was reconciled again and the delayed effect run.
    expect(reconciled).toContain('leftovers');

    await redis.connect().set(exitKey(identity), '0');
    await waitForState(log, identity, 'cleaned');
  }, 120_000);
});
