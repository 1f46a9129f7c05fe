import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BOTTLES_INDEX_KEY, bottleKeys } from '../../src/event-store/keys.js';
import { AppendConflictError, EventLog, stampEvents } from '../../src/event-store/log.js';
import { parseEvent, type LifecycleEvent, type NewEvent } from '../../src/events/schema.js';
import { entryToEvent, type StreamEntry } from '../../src/event-store/read.js';
import { APPEND_SCRIPT } from '../../src/event-store/scripts/append.js';
import {
  foldEvent,
  foldHistory,
  initialBottleState,
  MACHINE_VERSION,
  statesEqual,
  type BottleState,
} from '../../src/machines/index.js';
import { openBottleLog } from '../../src/engine/bottle-log.js';
import { launchSteps, samplePlan } from '../golden/fixtures.js';

/** A db index of its own plus unique identities keep these keys away from everyone else's. */
const TEST_DB = 5;
const redisOptions = { host: '127.0.0.1', port: 6379, db: TEST_DB };

let redis: Redis;
const made: string[] = [];

function newIdentity(): string {
  const id = `elog${randomBytes(3).toString('hex')}-${randomBytes(3).toString('hex').slice(0, 5)}`;
  made.push(id);
  return id;
}

async function removeBottle(identity: string): Promise<void> {
  const keys = bottleKeys(identity);
  await redis.del(keys.events, keys.state, keys.info, keys.causes);
  await redis.zrem(BOTTLES_INDEX_KEY, identity);
}

beforeAll(() => {
  redis = new Redis(redisOptions);
});
afterEach(async () => {
  for (const identity of made.splice(0)) await removeBottle(identity);
});
afterAll(async () => {
  await redis.quit();
});

const AT = '2026-11-20T10:00:00.000Z';

function startEvents(identity: string): NewEvent[] {
  return launchSteps(identity).map(([type, data]) => ({ type, data }) as NewEvent);
}

/** What the worker does: stamp after the current state, fold, append with the folded state. */
async function commit(log: EventLog, identity: string, state: BottleState, events: NewEvent[], cause?: string) {
  const stamped = stampEvents(state.seq, events, AT);
  let next = state;
  for (const ev of stamped) next = foldEvent(next, ev).state;
  const result = await log.append(identity, state.seq, stamped, next, cause);
  return { result, next };
}

describe('EventLog against the real Redis', () => {
  it('round-trips appended events and stores the live state, index and info atomically', async () => {
    const log = openBottleLog(redis);
    const identity = newIdentity();
    expect(await log.exists(identity)).toBe(false);
    expect(await log.lastSeq(identity)).toBe(0);
    expect(await log.liveState(identity)).toBeNull();

    const { result, next } = await commit(log, identity, initialBottleState(identity), startEvents(identity));
    expect(result.lastSeq).toBe(7);
    expect(result.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);

    const read = await log.read(identity);
    expect(read).toEqual(result.events);
    const ids = await redis.xrange(bottleKeys(identity).events, '-', '+').then((es) => es.map(([id]) => id));
    expect(ids).toEqual(['1-0', '2-0', '3-0', '4-0', '5-0', '6-0', '7-0']);
    expect(await log.read(identity, 3, 4)).toEqual(read.slice(2, 4));
    expect(await log.exists(identity)).toBe(true);
    expect(await log.lastSeq(identity)).toBe(7);

    const live = await log.liveState(identity);
    expect(live).toEqual(next);
    expect(live?.value).toBe('running');
    expect(live?.machine).toBe(MACHINE_VERSION);
    expect(statesEqual(live!, foldHistory(identity, read).state)).toBe(true);

    const listed = (await log.listBottles()).find((b) => b.identity === identity);
    expect(listed).toEqual({
      identity,
      agent: samplePlan(identity).agent,
      bottle: 'dev',
      host: 'buildhost',
      started_at: AT,
    });
    expect(await redis.zscore(BOTTLES_INDEX_KEY, identity)).toBe(String(Date.parse(AT)));
  });

  it('refuses an append whose expected last seq is stale, writing nothing', async () => {
    const log = openBottleLog(redis);
    const identity = newIdentity();
    const { next } = await commit(log, identity, initialBottleState(identity), startEvents(identity).slice(0, 2));
    const stale = initialBottleState(identity);
    const error = await commit(log, identity, stale, startEvents(identity).slice(0, 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppendConflictError);
    expect((error as AppendConflictError).actualLastSeq).toBe(2);
    expect(await log.lastSeq(identity)).toBe(2);
    expect(await log.liveState(identity)).toEqual(next);
  });

  it('reads a cached live state it cannot trust as null instead of throwing', async () => {
    const log = openBottleLog(redis);
    const identity = newIdentity();
    const { next } = await commit(log, identity, initialBottleState(identity), startEvents(identity).slice(0, 2));
    const stateKey = bottleKeys(identity).state;
    // Written by another machine version: its states may mean something else.
    await redis.set(stateKey, JSON.stringify({ ...next, machine: MACHINE_VERSION + 1 }));
    expect(await log.liveState(identity)).toBeNull();
    await redis.set(stateKey, JSON.stringify({ seq: 2, value: 'building' }));
    expect(await log.liveState(identity)).toBeNull();
    await redis.set(stateKey, '{not json');
    expect(await log.liveState(identity)).toBeNull();
    // The log itself is untouched, and the next append stores a trusted state again.
    expect(await log.lastSeq(identity)).toBe(2);
    const again = await commit(log, identity, next, startEvents(identity).slice(2, 3));
    expect(await log.liveState(identity)).toEqual(again.next);
  });

  it('appends a cause once: a retried job gets the first append seqs back', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    const first = await commit(
      log,
      identity,
      initialBottleState(identity),
      startEvents(identity).slice(0, 2),
      'command.start.1',
    );
    const again = await commit(log, identity, first.next, startEvents(identity).slice(0, 2), 'command.start.1');
    expect(again.result.duplicateOf).toEqual({ first: 1, last: 2 });
    expect(again.result.events).toEqual([]);
    expect(await log.lastSeq(identity)).toBe(2);
  });

  it('rejects a batch whose seqs do not follow the expected last seq', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    const stamped = stampEvents(1, startEvents(identity).slice(0, 1), AT);
    await expect(log.append(identity, 0, stamped, { ...initialBottleState(identity), seq: 2 })).rejects.toThrow(
      /has seq 2, expected 1/,
    );
    expect(await log.exists(identity)).toBe(false);
  });

  it('keeps a linear, gapless, duplicate-free history when two appenders race on one bottle', async () => {
    const identity = newIdentity();
    const setup = openBottleLog(redis);
    await commit(setup, identity, initialBottleState(identity), startEvents(identity));
    const launched = startEvents(identity).length;

    const ROUNDS = 150;
    const racers = ['a', 'b'].map((name) => ({ name, conn: new Redis(redisOptions), conflicts: 0 }));
    try {
      await Promise.all(
        racers.map(async (racer) => {
          const log = openBottleLog(racer.conn);
          for (let round = 0; round < ROUNDS; round++) {
            // Odd rounds append two events at once, so batches interleave too.
            const batch: NewEvent[] = [
              {
                type: 'egress.allowed',
                data: {
                  n: round,
                  host: `${racer.name}.test`,
                  port: 443,
                  method: 'CONNECT',
                  reason: `${racer.name}-${round}`,
                },
              },
            ];
            if (round % 2 === 1)
              batch.push({
                type: 'egress.denied',
                data: {
                  n: round,
                  host: `${racer.name}.test`,
                  port: 80,
                  method: 'GET',
                  reason: `${racer.name}-${round}-second`,
                },
              });
            for (;;) {
              const state = (await log.liveState(identity)) ?? initialBottleState(identity);
              try {
                await commit(log, identity, state, batch);
                break;
              } catch (err) {
                if (!(err instanceof AppendConflictError)) throw err;
                racer.conflicts++;
              }
            }
          }
        }),
      );
    } finally {
      for (const racer of racers) await racer.conn.quit();
    }

    const log = openBottleLog(redis);
    const events = await log.read(identity);
    const perRacer = ROUNDS + Math.floor(ROUNDS / 2);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: launched + 2 * perRacer }, (_, i) => i + 1));
    const reasons = events.slice(launched).map((e) => (e.data as { reason: string }).reason);
    expect(new Set(reasons).size).toBe(reasons.length);
    for (const racer of racers) {
      const mine = events.filter(
        (e) => e.type.startsWith('egress.') && (e.data as { host: string }).host === `${racer.name}.test`,
      );
      expect(mine).toHaveLength(perRacer);
      // Each racer's own events stay in the order it appended them.
      const rounds = mine.map((e) => (e.data as { n: number }).n);
      expect(rounds).toEqual([...rounds].sort((x, y) => x - y));
    }
    expect(racers[0].conflicts + racers[1].conflicts).toBeGreaterThan(0);
    const live = await log.liveState(identity);
    expect(live?.seq).toBe(events.length);
    expect(statesEqual(live!, foldHistory(identity, events).state)).toBe(true);
  }, 120_000);

  it('follows from a given seq: sees only later events, including ones appended while it waits', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    const { next } = await commit(log, identity, initialBottleState(identity), startEvents(identity).slice(0, 5));
    const controller = new AbortController();
    const seen: LifecycleEvent[] = [];
    const following = (async () => {
      for await (const ev of log.follow(identity, 3, { signal: controller.signal, blockMs: 200 })) {
        seen.push(ev);
        if (ev.seq === 7) controller.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await commit(log, identity, next, [
      startEvents(identity)[5],
      {
        type: 'egress.allowed',
        data: { n: 1, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' },
      },
    ]);
    await following;
    expect(seen.map((e) => e.seq)).toEqual([4, 5, 6, 7]);
    expect(seen.at(-1)?.type).toBe('egress.allowed');
  });

  it('stops following promptly when aborted while blocked', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    const controller = new AbortController();
    const started = Date.now();
    const following = (async () => {
      const seen: LifecycleEvent[] = [];
      for await (const ev of log.follow(identity, 0, { signal: controller.signal, blockMs: 10_000 })) seen.push(ev);
      return seen;
    })();
    setTimeout(() => controller.abort(), 200);
    expect(await following).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('upcasts a stored v1 agent.exited when reading', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    const key = bottleKeys(identity).events;
    await redis.xadd(
      key,
      '1-0',
      'type',
      'agent.exited',
      'at',
      AT,
      'v',
      '1',
      'data',
      JSON.stringify({ exit_code: 137 }),
    );
    const [event] = await log.read(identity);
    expect(event).toEqual({ seq: 1, type: 'agent.exited', at: AT, v: 2, data: { code: 137, signal: 'SIGKILL' } });
    // The stored record itself is untouched.
    expect(await redis.xrange(key, '-', '+')).toEqual([
      ['1-0', ['type', 'agent.exited', 'at', AT, 'v', '1', 'data', '{"exit_code":137}']],
    ]);
  });

  it('reads entries whose fields are stored in another order', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    await redis.xadd(bottleKeys(identity).events, '1-0', 'data', '{}', 'v', '1', 'at', AT, 'type', 'bottle.cleaned');
    expect(await log.read(identity)).toEqual([{ seq: 1, type: 'bottle.cleaned', at: AT, v: 1, data: {} }]);
  });

  it('reports a corrupt stored event with the bottle and seq', async () => {
    const log = new EventLog(redis);
    const identity = newIdentity();
    await redis.xadd(
      bottleKeys(identity).events,
      '1-0',
      'type',
      'image.built',
      'at',
      AT,
      'v',
      '1',
      'data',
      '{"tag":1}',
    );
    await expect(log.read(identity)).rejects.toThrow(
      new RegExp(`bottle ${identity}: stored event 1 \\(image\\.built\\)`),
    );
  });

  it('never trims the stream: thousands of events all stay readable from seq 1', async () => {
    const log = openBottleLog(redis);
    const identity = newIdentity();
    let state = (await commit(log, identity, initialBottleState(identity), startEvents(identity))).next;
    const TOTAL_OBSERVATIONS = 4500;
    for (let sent = 0; sent < TOTAL_OBSERVATIONS; sent += 500) {
      const batch: NewEvent[] = Array.from({ length: 500 }, (_, i) => ({
        type: 'egress.allowed',
        data: { n: sent + i + 1, host: 'github.com', port: 443, method: 'CONNECT', reason: 'allowlisted' },
      }));
      state = (await commit(log, identity, state, batch)).next;
    }
    const total = startEvents(identity).length + TOTAL_OBSERVATIONS;
    expect(await redis.xlen(bottleKeys(identity).events)).toBe(total);
    const events = await log.read(identity);
    expect(events).toHaveLength(total);
    expect(events[0].seq).toBe(1);
    expect(events.at(-1)?.seq).toBe(total);
    expect((await log.read(identity, 1999, 2002)).map((e) => e.seq)).toEqual([1999, 2000, 2001, 2002]);
    expect((await log.liveState(identity))?.context.lastEgressDecision).toBe(TOTAL_OBSERVATIONS);
    // Nothing on the write path can trim: no trimming command exists in the code at all.
    const eventsDir = join(import.meta.dirname, '../../src/event-store');
    const sources = ['log.ts', 'read.ts'].map((file) => readFileSync(join(eventsDir, file), 'utf8'));
    for (const text of [APPEND_SCRIPT, ...sources]) expect(text).not.toMatch(/XTRIM|MAXLEN|MINID|XDEL/i);
  }, 60_000);
});

describe('EventLog.read: paged and decoded for speed, yet exactly as entry by entry', () => {
  type Fields = Array<string | Buffer>;
  type Outcome = { events: LifecycleEvent[] } | { error: string };

  const egressData = (n: number, reason = 'allowlisted') =>
    JSON.stringify({ n, host: 'github.com', port: 443, method: 'CONNECT', reason });
  const egress = (n: number, at = AT, reason?: string): Fields => [
    'type',
    n % 5 === 0 ? 'egress.denied' : 'egress.allowed',
    'at',
    at,
    'v',
    '1',
    'data',
    egressData(n, reason),
  ];

  /** Stores entries as ids 1-0, 2-0, ... exactly as given, past every check append makes. */
  async function store(identity: string, entries: Fields[]): Promise<void> {
    const key = bottleKeys(identity).events;
    for (let i = 0; i < entries.length; i += 1000) {
      const pipeline = redis.pipeline();
      entries.slice(i, i + 1000).forEach((fields, j) => pipeline.call('XADD', key, `${i + j + 1}-0`, ...fields));
      for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
    }
  }

  async function outcome(read: () => Promise<LifecycleEvent[]>): Promise<Outcome> {
    try {
      return { events: await read() };
    } catch (err) {
      return { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
    }
  }

  /** The reference: every entry fetched with XRANGE and decoded on its own. */
  const entryByEntry = (identity: string) =>
    outcome(async () => {
      const entries = (await redis.xrange(bottleKeys(identity).events, '-', '+')) as StreamEntry[];
      return entries.map((entry) => entryToEvent(identity, entry));
    });

  it('reads a long, varied history exactly as decoding each entry on its own does', async () => {
    const identity = newIdentity();
    const times = ['2026-11-30T23:59:59.999Z', '2024-02-29T00:00:00+05:30', '2026-12-31T10:00Z', AT];
    const reason = (i: number) => `naïve "quoted" \\ ${i}\n🎉`;
    const entries = Array.from({ length: 10_000 }, (_, i) => egress(i + 1, times[i % times.length], reason(i)));
    for (let seq = 700; seq <= 10_000; seq += 700) {
      entries[seq - 1] = ['type', 'bottle.stop_requested', 'at', AT, 'v', '1', 'data', JSON.stringify({ by: 'cli' })];
    }
    entries[1399] = ['type', 'agent.exited', 'at', AT, 'v', '1', 'data', JSON.stringify({ exit_code: 137 })];
    entries[4320] = ['data', egressData(4321), 'v', '1', 'at', AT, 'type', 'egress.allowed'];
    entries[4999] = ['type', 'egress.allowed', 'at', AT, 'data', egressData(5000)];
    const extraKey = JSON.stringify({ ...JSON.parse(egressData(6000)), extra: 1 });
    entries[5999] = ['type', 'egress.allowed', 'at', AT, 'v', '1', 'data', extraKey];
    await store(identity, entries);

    const paged = await outcome(() => new EventLog(redis).read(identity));
    expect(paged).toEqual(await entryByEntry(identity));
    // And as the read path before the paged decoder: every entry's fields straight into parseEvent.
    const stored = (await redis.xrange(bottleKeys(identity).events, '-', '+')) as StreamEntry[];
    const parsedOneByOne = stored.map(([id, list]) => {
      const fields = new Map(list.flatMap((name, i) => (i % 2 === 0 ? [[name, list[i + 1]] as const] : [])));
      const [type, at, v, data] = ['type', 'at', 'v', 'data'].map((name) => fields.get(name));
      const seq = Number.parseInt(id, 10);
      const version = v === undefined ? undefined : Number(v);
      return parseEvent({ seq, type, at, v: version, data: JSON.parse(data ?? 'null') });
    });
    expect(paged).toEqual({ events: parsedOneByOne });
    const events = 'events' in paged ? paged.events : [];
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    expect(events[1399]).toMatchObject({ v: 2, data: { code: 137, signal: 'SIGKILL' } });
    expect(events[4999]).toMatchObject({ v: 1, data: { n: 5000 } });
    expect(events[5999].data).not.toHaveProperty('extra');
  });

  it('honours fromSeq and toSeq across page boundaries', async () => {
    const identity = newIdentity();
    await store(
      identity,
      Array.from({ length: 2500 }, (_, i) => egress(i + 1)),
    );
    const log = new EventLog(redis);
    const seqs = async (from?: number, to?: number) => (await log.read(identity, from, to)).map((e) => e.seq);
    const range = (first: number, last: number) => Array.from({ length: last - first + 1 }, (_, i) => first + i);
    expect(await seqs()).toEqual(range(1, 2500));
    expect(await seqs(1, 1000)).toEqual(range(1, 1000));
    expect(await seqs(1000, 1001)).toEqual([1000, 1001]);
    expect(await seqs(999, 2001)).toEqual(range(999, 2001));
    expect(await seqs(2000)).toEqual(range(2000, 2500));
    expect(await seqs(2400, 9999)).toEqual(range(2400, 2500));
    expect(await seqs(0, 3)).toEqual([1, 2, 3]);
    expect(await seqs(1234, 1234)).toEqual([1234]);
    expect(await seqs(2501)).toEqual([]);
    expect(await seqs(5, 4)).toEqual([]);
    expect(await new EventLog(redis).read(newIdentity())).toEqual([]);
  });

  it('names the bottle and seq of a corrupt entry on any page, as decoding it alone does', async () => {
    const appended = (type: string | Buffer, at: string, v: string | Buffer, data: string): Fields => {
      return ['type', type, 'at', at, 'v', v, 'data', data];
    };
    const valid = egressData(1500);
    const corruptions: Record<string, Fields> = {
      'data that is not JSON': appended('egress.allowed', AT, '1', '{"n":'),
      'data that is more than one JSON value': appended('egress.allowed', AT, '1', '1],[2'),
      'no type': ['at', AT, 'v', '1', 'data', valid],
      'a version that is not a number': appended('egress.allowed', AT, 'x', valid),
      'a version that is not UTF-8': appended('egress.allowed', AT, Buffer.from([0xa0, 0x31]), valid),
      'a quote in the type': appended('egress."allowed', AT, '1', valid),
      'a backslash in the time': appended('egress.allowed', `${AT}\\`, '1', valid),
      'a type ending in half a character': appended(Buffer.from('egress.allowed\xe2\x82', 'latin1'), AT, '1', valid),
      'data the schema refuses': appended('egress.allowed', AT, '1', valid.replace('443', '70000')),
    };
    for (const [name, corrupt] of Object.entries(corruptions)) {
      const identity = newIdentity();
      const entries = Array.from({ length: 1800 }, (_, i) => egress(i + 1));
      entries[1499] = corrupt;
      await store(identity, entries);
      const paged = await outcome(() => new EventLog(redis).read(identity));
      expect(paged, name).toEqual(await entryByEntry(identity));
      const named = new RegExp(`^InvalidEventError: bottle ${identity}: stored event 1500[ :]`);
      expect('error' in paged && paged.error, name).toMatch(named);
    }
  });

  it('never takes data that is not exactly one JSON value for an event', async () => {
    // Joined into one JSON text, these two would nest the second entry inside the first and forge
    // a third in its place: a reader that parses many entries at once must not be fooled by them.
    const forged = `2]]],[0,"2-0","egress.allowed","${AT}","1",${egressData(2)}`;
    const attempts: Fields[][] = [
      [
        ['type', 'egress.allowed', 'at', AT, 'v', '1', 'data', '[[1'],
        ['type', 'egress.allowed', 'at', AT, 'v', '1', 'data', forged],
      ],
      [['type', 'egress.allowed', 'at', AT, 'v', '1', 'data', ` ${egressData(1)}\n`]],
      [['type', 'egress.allowed', 'at', AT, 'v', '1', 'data', `\ufeff${egressData(1)}`]],
    ];
    for (const entries of attempts) {
      const identity = newIdentity();
      await store(identity, [...entries, egress(entries.length + 1)]);
      expect(await outcome(() => new EventLog(redis).read(identity))).toEqual(await entryByEntry(identity));
    }
  });

  it('takes the seq from any stream id as decoding each entry on its own does', async () => {
    const identity = newIdentity();
    const key = bottleKeys(identity).events;
    for (const id of ['1-5', '99999999999999-0', '999999999999999-0', '123456789012345678-0', '123456789012345678-1']) {
      await redis.xadd(key, id, ...(egress(1) as string[]));
    }
    const paged = await outcome(() => new EventLog(redis).read(identity));
    expect(paged).toEqual(await entryByEntry(identity));
    const seqs = [1, 99999999999999, 999999999999999, 123456789012345678, 123456789012345678];
    expect('events' in paged && paged.events.map((e) => e.seq)).toEqual(seqs);
  });

  it('decodes bytes that are not UTF-8 as decoding each entry on its own does', async () => {
    const identity = newIdentity();
    const withData = (latin1: string): Fields => {
      return ['type', 'egress.allowed', 'at', AT, 'v', '1', 'data', Buffer.from(latin1, 'latin1')];
    };
    await store(identity, [
      withData('{"n":1,"host":"\xff\xfe","port":1,"method":"m","reason":"r"}'),
      withData('{"n":2,"host":"h","port":1,"method":"m","reason":"\xe2\x82"}'),
      withData('{"n":3,"host":"h","port":1,"method":"\xc3","reason":"-"}'),
    ]);
    const paged = await outcome(() => new EventLog(redis).read(identity));
    expect(paged).toEqual(await entryByEntry(identity));
    const hosts = 'events' in paged && paged.events.map((e) => (e.data as { host: string }).host);
    expect(hosts).toEqual(['\ufffd\ufffd', 'h', 'h']);
  });
});
