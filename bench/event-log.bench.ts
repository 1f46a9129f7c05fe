import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { BOTTLES_INDEX_KEY, bottleKeys } from '../src/event-store/keys.js';
import { EventLog, stampEvents } from '../src/event-store/log.js';
import type { NewEvent } from '../src/events/schema.js';
import { foldEvent, initialBottleState, type BottleState } from '../src/machines/index.js';
import type { BottlePlan } from '../src/plan/schema.js';
import { startTestRedis, type AppendFsync, type TestRedis } from '../test/support/redis-server.js';
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

/** A redis-server of the bench's own with the given fsync policy, and a connection to it. */
interface FsyncRedis {
  policy: AppendFsync;
  server: TestRedis;
  redis: Redis;
}

/** One appender: `count` appends of one event each, one after another. */
async function appendSequence(log: EventLog, identity: string, state: BottleState, count: number) {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    state = await commit(log, identity, state, [egressEvent(state.seq)]);
    latencies.push(performance.now() - t0);
  }
  return { latencies, state };
}

/**
 * What fsyncing every write costs the event log: the same appends against two redis-servers
 * started here, one with appendfsync always (what the embedded default and compose run) and one
 * with everysec, in alternating rounds so both see the same machine. One appender measures
 * latency; several at once (the worker appends for many bottles) measure throughput, where Redis
 * fsyncs the writes of one event-loop turn together.
 */
export async function benchFsyncPolicies(samples = 1000, rounds = 4, appenders = 8): Promise<Row[]> {
  const servers: FsyncRedis[] = [];
  try {
    for (const policy of ['always', 'everysec'] as const) {
      const server = await startTestRedis({ appendfsync: policy });
      servers.push({ policy, server, redis: server.connect() });
    }
    const perRound = Math.ceil(samples / rounds);
    const measured = new Map<AppendFsync, { latencies: number[]; soloMs: number; manyMs: number; many: number }>();
    const states = new Map<string, BottleState>();
    const begin = async (log: EventLog, identity: string) =>
      commit(log, identity, initialBottleState(identity), [
        { type: 'bottle.start_requested', data: { plan: benchPlan(identity) } },
      ]);
    for (const server of servers) {
      const log = new EventLog(server.redis);
      const solo = benchIdentity('benchfsync');
      states.set(`${server.policy}:solo`, (await appendSequence(log, solo, await begin(log, solo), 50)).state);
      for (let a = 0; a < appenders; a++) {
        const identity = benchIdentity(`benchfsync${a}x`);
        states.set(`${server.policy}:${a}`, await begin(log, identity));
      }
      measured.set(server.policy, { latencies: [], soloMs: 0, manyMs: 0, many: 0 });
    }
    for (let round = 0; round < rounds; round++) {
      for (const server of servers) {
        const log = new EventLog(server.redis);
        const m = measured.get(server.policy)!;
        const soloKey = `${server.policy}:solo`;
        const soloState = states.get(soloKey)!;
        const t0 = performance.now();
        const run = await appendSequence(log, soloState.context.identity, soloState, perRound);
        m.soloMs += performance.now() - t0;
        m.latencies.push(...run.latencies);
        states.set(soloKey, run.state);

        const t1 = performance.now();
        const perAppender = Math.ceil(perRound / appenders);
        const runs = await Promise.all(
          Array.from({ length: appenders }, (_, a) => {
            const state = states.get(`${server.policy}:${a}`)!;
            return appendSequence(log, state.context.identity, state, perAppender);
          }),
        );
        m.manyMs += performance.now() - t1;
        m.many += perAppender * appenders;
        runs.forEach((r, a) => states.set(`${server.policy}:${a}`, r.state));
      }
    }
    const always = measured.get('always')!;
    const everysec = measured.get('everysec')!;
    const perSecond = (count: number, ms: number) => (count * 1000) / ms;
    const onTmpfs = statfsSync(servers[0].server.dir).type === TMPFS_MAGIC;
    const where = onTmpfs ? ' [temp folder is tmpfs: fsync is free there, set TMPDIR to a disk]' : '';
    return [
      {
        metric: `append p50, appendfsync always (baseline: everysec)${where}`,
        value: percentile(always.latencies, 50),
        unit: 'ms',
        baseline: percentile(everysec.latencies, 50),
      },
      {
        metric: 'append p99, appendfsync always',
        value: percentile(always.latencies, 99),
        unit: 'ms',
        baseline: percentile(everysec.latencies, 99),
      },
      {
        metric: 'appends per second, one appender, always',
        value: perSecond(always.latencies.length, always.soloMs),
        unit: '/s',
        baseline: perSecond(everysec.latencies.length, everysec.soloMs),
      },
      {
        metric: `appends per second, ${appenders} appenders at once, always`,
        value: perSecond(always.many, always.manyMs),
        unit: '/s',
        baseline: perSecond(everysec.many, everysec.manyMs),
      },
    ];
  } finally {
    for (const server of servers) {
      await server.server.destroy();
    }
  }
}

const TMPFS_MAGIC = 0x01021994;

export async function main(): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    printRows('event log append (baseline: bare XADD round trip)', await benchEventLog(redis));
  } finally {
    redis.disconnect();
  }
}
