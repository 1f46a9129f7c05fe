import type { Redis } from 'ioredis';
import { BOTTLES_INDEX_KEY, bottleKeys } from './keys.js';
import { entryToEvent, readEvents, seqOf, type StreamEntry } from './read.js';
import {
  CURRENT_VERSION,
  InvalidEventError,
  parseEvent,
  parseNewEventData,
  type LifecycleEvent,
  type NewEvent,
} from '../events/schema.js';
import { APPEND_SCRIPT } from './scripts/append.js';

/**
 * The per-bottle event log in Redis Streams: the source of truth for every
 * bottle. One stream per bottle, never trimmed, entry id `<seq>-0`. Appends
 * are optimistic (expected last seq) and store the caller's folded live state
 * atomically with the events, so the cached state never lags the log.
 *
 * The log does not know what a live state is: whoever folds the events
 * (the lifecycle machine) gives the parser that reads the cached one back,
 * and that parser may refuse a cache it cannot trust (null: fold the log).
 */
export type LiveStateParser<State> = (raw: unknown) => State | null;

export class AppendConflictError extends Error {
  constructor(
    readonly identity: string,
    readonly expectedLastSeq: number,
    readonly actualLastSeq: number,
  ) {
    super(`append to ${identity} conflicted: expected last seq ${expectedLastSeq}, log is at ${actualLastSeq}`);
    this.name = 'AppendConflictError';
  }
}

export interface AppendResult {
  /** The events as stored (empty for a duplicate). */
  events: LifecycleEvent[];
  /** The log's last seq after this call. */
  lastSeq: number;
  /** Set when `cause` had been appended before: nothing was written, these are its seqs. */
  duplicateOf?: { first: number; last: number };
}

export interface BottleInfo {
  identity: string;
  agent: string;
  bottle: string;
  host: string;
  started_at: string;
}

export interface FollowOptions {
  signal: AbortSignal;
  /** How long one XREAD blocks before it re-checks the signal. */
  blockMs?: number;
}

const FOLLOW_BATCH = 500;
const APPEND_COMMAND = 'cbAppendEvents';

type AppendReply = [status: 'ok' | 'conflict' | 'badseq', value: number] | ['duplicate', number, number];
type AppendCommand = (...args: Array<string | number>) => Promise<AppendReply>;

/**
 * Stamps new events with seqs after `expectedLastSeq`, a timestamp and the
 * current schema version, validating their data: the input to `foldEvent` and
 * `EventLog.append`.
 */
export function stampEvents(expectedLastSeq: number, events: readonly NewEvent[], at: string): LifecycleEvent[] {
  return events.map((e, i) => {
    const data = parseNewEventData(e.type, e.data);
    return parseEvent({
      seq: expectedLastSeq + 1 + i,
      type: e.type,
      at,
      v: CURRENT_VERSION[e.type],
      data,
    });
  });
}

export class EventLog<State extends { seq: number } = { seq: number }> {
  constructor(
    private readonly redis: Redis,
    private readonly parseState: LiveStateParser<State> = (raw) => raw as State,
  ) {
    if (!(APPEND_COMMAND in redis)) redis.defineCommand(APPEND_COMMAND, { numberOfKeys: 5, lua: APPEND_SCRIPT });
  }

  /**
   * Appends already-stamped events (seqs expectedLastSeq+1, +2, ...; see
   * stampEvents) and stores `liveState`, the caller's fold of them, in one
   * atomic step. Throws AppendConflictError when the log is no longer at
   * `expectedLastSeq`: re-read, re-fold, retry. With `cause`, a second append
   * of the same cause writes nothing and reports the first one's seqs.
   */
  async append(
    identity: string,
    expectedLastSeq: number,
    events: readonly LifecycleEvent[],
    liveState: State,
    cause?: string,
  ): Promise<AppendResult> {
    const keys = bottleKeys(identity);
    if (events.length === 0) return { events: [], lastSeq: await this.lastSeq(identity) };
    events.forEach((ev, i) => {
      if (ev.seq !== expectedLastSeq + 1 + i) {
        throw new InvalidEventError(
          `append to ${identity}: event ${i} has seq ${ev.seq}, expected ${expectedLastSeq + 1 + i}`,
        );
      }
    });
    const lastEvent = events[events.length - 1];
    if (liveState.seq !== lastEvent.seq) {
      throw new Error(
        `append to ${identity}: live state is at seq ${liveState.seq} but the batch ends at ${lastEvent.seq}`,
      );
    }

    const first = events[0];
    const info: string[] = [];
    if (first.seq === 1 && first.type === 'bottle.start_requested') {
      const { plan } = first.data;
      info.push('agent', plan.agent, 'bottle', plan.bottle, 'host', plan.host, 'started_at', first.at);
    }
    if (first.seq === 1 && first.type === 'bottle.imported') {
      const { agent, host, started_at } = first.data;
      info.push('agent', agent, 'bottle', '(imported)', 'host', host, 'started_at', started_at);
    }
    const args: Array<string | number> = [
      keys.events,
      keys.state,
      BOTTLES_INDEX_KEY,
      keys.info,
      keys.causes,
      identity,
      expectedLastSeq,
      JSON.stringify(liveState),
      Date.parse(first.at),
      cause ?? '',
      events.length,
      info.length / 2,
      ...info,
    ];
    for (const ev of events) args.push(ev.seq, ev.type, ev.at, ev.v, JSON.stringify(ev.data));

    const reply = await (this.redis as unknown as Record<string, AppendCommand>)[APPEND_COMMAND](...args);
    switch (reply[0]) {
      case 'ok':
        return { events: [...events], lastSeq: reply[1] };
      case 'conflict':
        throw new AppendConflictError(identity, expectedLastSeq, reply[1]);
      case 'duplicate':
        return { events: [], lastSeq: await this.lastSeq(identity), duplicateOf: { first: reply[1], last: reply[2] } };
      default:
        throw new Error(`append to ${identity}: unexpected reply ${JSON.stringify(reply)}`);
    }
  }

  /** Events fromSeq..toSeq inclusive (default: to the end), upcast and validated. */
  async read(identity: string, fromSeq = 1, toSeq?: number): Promise<LifecycleEvent[]> {
    return readEvents(this.redis, identity, fromSeq, toSeq);
  }

  /** Seq of the newest event, 0 for a bottle with no events. */
  async lastSeq(identity: string): Promise<number> {
    const tail = (await this.redis.xrevrange(bottleKeys(identity).events, '+', '-', 'COUNT', 1)) as StreamEntry[];
    return tail.length === 0 ? 0 : seqOf(tail[0][0]);
  }

  /** The cached live state written by the last append; null before the first, or when the parser refuses it. */
  async liveState(identity: string): Promise<State | null> {
    const raw = await this.redis.get(bottleKeys(identity).state);
    if (raw === null) return null;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return null;
    }
    return this.parseState(json);
  }

  async exists(identity: string): Promise<boolean> {
    return (await this.redis.exists(bottleKeys(identity).events)) === 1;
  }

  /** Every bottle ever started, oldest first, from the global index. */
  async listBottles(): Promise<BottleInfo[]> {
    const identities = await this.redis.zrange(BOTTLES_INDEX_KEY, 0, -1);
    if (identities.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const identity of identities) pipeline.hgetall(bottleKeys(identity).info);
    const replies = (await pipeline.exec()) ?? [];
    return identities.map((identity, i) => {
      const [err, fields] = replies[i] ?? [null, {}];
      if (err) throw err;
      const info = (fields ?? {}) as Record<string, string>;
      return {
        identity,
        agent: info.agent ?? '',
        bottle: info.bottle ?? '',
        host: info.host ?? '',
        started_at: info.started_at ?? '',
      };
    });
  }

  /**
   * Yields events after `afterSeq` as they are appended, until the signal
   * aborts. Uses its own connection (XREAD BLOCK holds it) and always resumes
   * from the last id it saw, never `$`, so no event is skipped between calls.
   */
  async *follow(
    identity: string,
    afterSeq: number,
    opts: FollowOptions,
  ): AsyncGenerator<LifecycleEvent, void, undefined> {
    const { events: key } = bottleKeys(identity);
    const { signal, blockMs = 5000 } = opts;
    if (signal.aborted) return;
    const conn = this.redis.duplicate();
    const stop = () => conn.disconnect();
    signal.addEventListener('abort', stop, { once: true });
    let lastId = `${afterSeq}-0`;
    try {
      while (!signal.aborted) {
        let reply: Array<[string, StreamEntry[]]> | null;
        try {
          reply = await conn.xread('COUNT', FOLLOW_BATCH, 'BLOCK', blockMs, 'STREAMS', key, lastId);
        } catch (err) {
          if (signal.aborted) return;
          throw err;
        }
        if (!reply) continue;
        for (const [, entries] of reply) {
          for (const entry of entries) {
            const event = entryToEvent(identity, entry);
            lastId = entry[0];
            yield event;
            if (signal.aborted) return;
          }
        }
      }
    } finally {
      signal.removeEventListener('abort', stop);
      conn.disconnect();
    }
  }
}
