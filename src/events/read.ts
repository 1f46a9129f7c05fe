import { randomInt } from 'node:crypto';
import type { Redis } from 'ioredis';
import { bottleKeys } from './keys.js';
import { InvalidEventError, parseEvent, parseStoredEvent, type LifecycleEvent } from './schema.js';
import { READ_RANGE_SCRIPT } from './scripts/read-range.js';

/**
 * Reading a bottle's history: pages of the stream, each fetched as one JSON
 * text by the read-range script (see there why that text can be trusted), and
 * each event upcast and validated exactly as `parseEvent` does. A page the
 * script cannot render, or whose text does not check out, is read again with
 * XRANGE and decoded entry by entry, which also yields the precise error for a
 * corrupt entry.
 */

export type StreamEntry = [id: string, fields: string[]];
type BufferEntry = [id: Buffer, fields: Buffer[]];
type RangeReply = [count: number, lastId: string, rows: string];
type RangeCommand = (key: string, start: string, end: string, count: number, marker: number) => Promise<RangeReply>;

/** Entries per round trip: small enough that Redis renders the next page while this one is parsed. */
const READ_PAGE = 1000;
const READ_RANGE_COMMAND = 'cbReadRange';

/** Events fromSeq..toSeq inclusive (default: to the end), upcast and validated. */
export async function readEvents(redis: Redis, identity: string, fromSeq = 1, toSeq?: number): Promise<LifecycleEvent[]> {
  if (toSeq !== undefined && toSeq < fromSeq) return [];
  if (!(READ_RANGE_COMMAND in redis)) redis.defineCommand(READ_RANGE_COMMAND, { numberOfKeys: 1, lua: READ_RANGE_SCRIPT });
  const readRange = (redis as unknown as Record<string, RangeCommand>)[READ_RANGE_COMMAND].bind(redis);
  const { events: key } = bottleKeys(identity);
  const end = toSeq === undefined ? '+' : `${toSeq}-0`;
  // Unguessable by whoever wrote the stored data; see the read-range script.
  const marker = randomInt(1, 2 ** 47);
  const fetchPage = (start: string) => {
    const reply = readRange(key, start, end, READ_PAGE, marker);
    // A corrupt entry can end the read before a prefetched page is awaited.
    reply.catch(() => undefined);
    return reply;
  };

  const out: LifecycleEvent[] = [];
  let start = `${Math.max(1, fromSeq)}-0`;
  let pending = fetchPage(start);
  for (;;) {
    const [count, lastId, rows] = await pending;
    const more = count === READ_PAGE;
    // Ask for the next page before parsing this one, so Redis renders it while we parse.
    if (more) pending = fetchPage(`(${lastId}`);
    if (count > 0 && !pushRows(identity, rows, count, marker, out)) {
      const entries = (await redis.xrangeBuffer(key, start, lastId)) as BufferEntry[];
      for (const entry of entries) out.push(bufferEntryToEvent(identity, entry));
    }
    if (!more) return out;
    start = `(${lastId}`;
  }
}

/**
 * Validates a page's rows onto `out`. False, with nothing pushed, when the text
 * is not exactly `count` marked rows: the caller then reads the page entry by entry.
 */
function pushRows(identity: string, text: string, count: number, marker: number, out: LifecycleEvent[]): boolean {
  if (text === '') return false;
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch {
    return false;
  }
  if (!Array.isArray(rows) || rows.length !== count) return false;
  // All rows are checked before any is used: a row is only trustworthy if every row is.
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== 6 || row[0] !== marker) return false;
  }
  for (const row of rows as Array<[number, string, string, string, string, unknown]>) {
    const seq = seqOf(row[1]);
    try {
      out.push(parseStoredEvent(seq, row[2], row[3], Number(row[4]), row[5]));
    } catch (err) {
      throw storedEventError(identity, seq, err);
    }
  }
  return true;
}

export function seqOf(id: string): number {
  return Number.parseInt(id, 10);
}

export function entryToEvent(identity: string, [id, fields]: StreamEntry): LifecycleEvent {
  let type: string | undefined;
  let at: string | undefined;
  let v: string | undefined;
  let data: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1];
    switch (fields[i]) {
      case 'type':
        type = value;
        break;
      case 'at':
        at = value;
        break;
      case 'v':
        v = value;
        break;
      case 'data':
        data = value;
        break;
    }
  }
  return storedToEvent(identity, id, type, at, v, data);
}

/** Field names in the order the append script writes them. */
const FIELD_ORDER = ['type', 'at', 'v', 'data'].map((name) => Buffer.from(name, 'latin1'));

function isField(actual: Buffer, expected: Buffer): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) return false;
  return true;
}

function bufferEntryToEvent(identity: string, [id, fields]: BufferEntry): LifecycleEvent {
  const inAppendOrder =
    fields.length === 8 &&
    isField(fields[0], FIELD_ORDER[0]) &&
    isField(fields[2], FIELD_ORDER[1]) &&
    isField(fields[4], FIELD_ORDER[2]) &&
    isField(fields[6], FIELD_ORDER[3]);
  if (inAppendOrder) {
    // All as UTF-8, as entries in any other order and the read-range script's rows are decoded.
    const [, type, , at, , v, , data] = fields;
    return storedToEvent(identity, id.toString('latin1'), type.toString(), at.toString(), v.toString(), data.toString());
  }
  return entryToEvent(identity, [id.toString(), fields.map((f) => f.toString())]);
}

function storedToEvent(identity: string, id: string, type?: string, at?: string, v?: string, data?: string): LifecycleEvent {
  const seq = seqOf(id);
  let parsedData: unknown;
  try {
    parsedData = data === undefined ? undefined : JSON.parse(data);
  } catch (err) {
    throw storedEventError(identity, seq, new Error(`data is not JSON (${err instanceof Error ? err.message : String(err)})`));
  }
  try {
    return parseEvent({ seq, type, at, v: v === undefined ? undefined : Number(v), data: parsedData });
  } catch (err) {
    throw storedEventError(identity, seq, err);
  }
}

function storedEventError(identity: string, seq: number, err: unknown): InvalidEventError {
  const reason = err instanceof Error ? err.message : String(err);
  // parseEvent names the seq (and type) itself once the envelope is sound.
  const named = reason.startsWith(`event ${seq} `) ? reason : `event ${seq}: ${reason}`;
  return new InvalidEventError(`bottle ${identity}: stored ${named}`);
}
