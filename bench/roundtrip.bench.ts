import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { EventLog } from '../src/event-store/log.js';
import type { EffectHandlers } from '../src/effects/types.js';
import { EFFECT_KINDS, type EffectKind } from '../src/machines/index.js';
import { runWorker } from '../src/worker/worker.js';
import { commandJobId, openQueue } from '../src/engine/queues.js';
import { percentile, type Row } from './stats.js';

/**
 * Command round trip: the CLI's path (enqueue a command job, the worker folds
 * and appends, the follower sees the event) next to a bare BullMQ
 * enqueue -> pickup on the same Redis in the same run.
 */
export async function benchRoundTrip(connect: () => Redis, rounds = 200): Promise<Row[]> {
  const baseline = await bareBullmq(connect, rounds);
  // Every effect reports nothing: the bench's bottle only ever receives commands.
  const nothing = async (): Promise<never[]> => [];
  const noEffects = Object.fromEntries(EFFECT_KINDS.map((k) => [k, nothing])) as Record<EffectKind, typeof nothing>;
  const running = await runWorker({ connect, handlers: noEffects satisfies EffectHandlers, concurrency: 8 });
  const redis = connect();
  const log = new EventLog(redis);
  const queue = openQueue(connect());
  const identity = `bench-${randomUUID()
    .replace(/-/g, '')
    .slice(0, 5)
    .replace(/[^0-9a-z]/g, 'a')}`;
  const samples: number[] = [];
  try {
    let after = await log.lastSeq(identity);
    for (let i = 0; i < rounds + 10; i++) {
      const commandId = randomUUID();
      const t0 = performance.now();
      await queue.add(
        'command',
        { identity, command_id: commandId, event: { type: 'bottle.stop_requested', data: { by: 'bench' } } },
        { jobId: commandJobId(identity, commandId) },
      );
      for await (const ev of log.follow(identity, after, { signal: AbortSignal.timeout(10_000), blockMs: 1000 })) {
        after = ev.seq;
        break;
      }
      if (i >= 10) samples.push(performance.now() - t0);
    }
  } finally {
    await running.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await deleteBottle(redis, identity);
    redis.disconnect();
  }
  return [
    {
      metric: 'command round trip p50',
      value: percentile(samples, 50),
      unit: 'ms',
      baseline: percentile(baseline, 50),
      target: '<= 5 ms',
    },
    {
      metric: 'command round trip p99',
      value: percentile(samples, 99),
      unit: 'ms',
      baseline: percentile(baseline, 99),
    },
  ];
}

async function bareBullmq(connect: () => Redis, rounds: number): Promise<number[]> {
  const name = `bench-bare-${randomUUID()}`;
  const queue = new Queue(name, { connection: connect(), prefix: 'cbbench' });
  let pickedUp: (() => void) | undefined;
  const worker = new Worker(name, async () => pickedUp?.(), {
    connection: connect(),
    prefix: 'cbbench',
    concurrency: 8,
  });
  await worker.waitUntilReady();
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds + 10; i++) {
      const seen = new Promise<void>((r) => (pickedUp = r));
      const t0 = performance.now();
      await queue.add('ping', { i }, { removeOnComplete: true });
      await seen;
      if (i >= 10) samples.push(performance.now() - t0);
    }
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  return samples;
}

async function deleteBottle(redis: Redis, identity: string): Promise<void> {
  const keys = await redis.keys(`cb:bottle:{${identity}}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.zrem('cb:bottles', identity);
}
