import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { BOTTLES_INDEX_KEY, bottleKeys } from '../src/event-store/keys.js';
import { EventLog, stampEvents } from '../src/event-store/log.js';
import type { NewEvent } from '../src/events/schema.js';
import { foldEvent, initialBottleState, type BottleState } from '../src/machines/index.js';
import type { BottlePlan } from '../src/plan/schema.js';
import { percentile, printRows, type Row } from './stats.js';

/**
 * Append latency: one event per EventLog.append (the Lua script: expected-seq
 * check, XADD, live state SET, index ZADD) next to a bare XADD round trip on
 * the same connection in the same run.
 */

export function benchIdentity(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}-${randomBytes(3).toString('hex').slice(0, 5)}`;
}

/** Deletes every key a bench bottle made. */
export async function removeBenchBottle(redis: Redis, identity: string): Promise<void> {
  const keys = bottleKeys(identity);
  await redis.del(keys.events, keys.state, keys.info, keys.causes);
  await redis.zrem(BOTTLES_INDEX_KEY, identity);
}

export function benchPlan(identity: string): BottlePlan {
  return {
    identity,
    agent: identity.replace(/-[0-9a-z]{5}$/, ''),
    bottle: 'bench',
    image: {
      tag: 'claude-bottle/bench:0000000000000000',
      context_hash: '0'.repeat(32),
      dockerfile: 'builtin:agent',
      builtin: true,
    },
    gateway_image: {
      tag: 'claude-bottle/gateway:0000000000000000',
      context_hash: '0'.repeat(32),
      dockerfile: 'builtin:gateway',
      builtin: true,
    },
    runtime: 'runsc',
    networks: { internal: `cb-${identity}-internal`, egress: `cb-${identity}-egress` },
    containers: { gateway: `cb-${identity}-gateway`, agent: `cb-${identity}-agent` },
    hosts: ['api.anthropic.com:443', 'github.com:443'],
    default_hosts: ['api.anthropic.com:443'],
    extra_hosts: {},
    mounts: [],
    env_names: ['ANTHROPIC_BASE_URL'],
    credentials: [],
    ssh: [],
    skills: [],
    prompt: null,
    command: ['claude'],
    args: [],
    cwd: '/work',
    copy_cwd: false,
    limits: { memory: null, cpus: null, pids: null },
    host: 'bench',
    manifest_path: '/dev/null',
  };
}

export function egressEvent(n: number): NewEvent {
  const allowed = n % 5 !== 0;
  return {
    type: allowed ? 'egress.allowed' : 'egress.denied',
    data: {
      n,
      host: allowed ? 'api.anthropic.com' : 'blocked.invalid',
      port: 443,
      method: 'CONNECT',
      reason: allowed ? 'allowlisted' : 'host not in allowlist',
    },
  };
}

/** Stamps, folds and appends like the worker does; returns the new live state. */
export async function commit(
  log: EventLog,
  identity: string,
  state: BottleState,
  events: NewEvent[],
): Promise<BottleState> {
  const stamped = stampEvents(state.seq, events, new Date().toISOString());
  let next = state;
  for (const ev of stamped) next = foldEvent(next, ev).state;
  await log.append(identity, state.seq, stamped, next);
  return next;
}

export async function benchEventLog(redis: Redis, samples = 2000, warmup = 200): Promise<Row[]> {
  const identity = benchIdentity('benchlog');
  const scratch = `cb:bench:{${identity}}:xadd`;
  const log = new EventLog(redis);
  try {
    const xadd: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      const data = JSON.stringify(egressEvent(i + 1).data);
      const t0 = performance.now();
      await redis.xadd(
        scratch,
        `${i + 1}-0`,
        'type',
        'egress.allowed',
        'at',
        new Date().toISOString(),
        'v',
        '1',
        'data',
        data,
      );
      if (i >= warmup) xadd.push(performance.now() - t0);
    }

    let state = await commit(log, identity, initialBottleState(identity), [
      { type: 'bottle.start_requested', data: { plan: benchPlan(identity) } },
    ]);
    const append: number[] = [];
    const endToEnd: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = performance.now();
      const stamped = stampEvents(state.seq, [egressEvent(i + 1)], new Date().toISOString());
      const next = foldEvent(state, stamped[0]).state;
      const t1 = performance.now();
      await log.append(identity, state.seq, stamped, next);
      const t2 = performance.now();
      state = next;
      if (i >= warmup) {
        append.push(t2 - t1);
        endToEnd.push(t2 - t0);
      }
    }
    return [
      {
        metric: 'append p50 (1 event, Lua: check + XADD + state + index)',
        value: percentile(append, 50),
        unit: 'ms',
        baseline: percentile(xadd, 50),
      },
      { metric: 'append p99', value: percentile(append, 99), unit: 'ms', baseline: percentile(xadd, 99) },
      {
        metric: 'stamp + validate + fold + append p50',
        value: percentile(endToEnd, 50),
        unit: 'ms',
        baseline: percentile(xadd, 50),
      },
      {
        metric: 'stamp + validate + fold + append p99',
        value: percentile(endToEnd, 99),
        unit: 'ms',
        baseline: percentile(xadd, 99),
      },
    ];
  } finally {
    await redis.del(scratch);
    await removeBenchBottle(redis, identity);
  }
}

export async function main(): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    printRows('event log append (baseline: bare XADD round trip)', await benchEventLog(redis));
  } finally {
    redis.disconnect();
  }
}
