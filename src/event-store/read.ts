import type { Redis } from 'ioredis';
import { bottleKeys } from './keys.js';
import { InvalidEventError, parseStoredEvent, type LifecycleEvent } from '../events/schema.js';

/**
 * Reading a bottle's history: XRANGE pages with Buffer replies, each entry
 * upcast and validated exactly as `parseEvent` does. Replays read thousands of
 * entries, so decoding one allocates as little as it can: the seq comes
 * straight from the id's bytes, and an entry stamped in the same batch as the
 * one before it reuses that entry's time.
 */

export type StreamEntry = [id: string, fields: string[]];
type BufferEntry = [id: Buffer, fields: Buffer[]];

/** Entries per XRANGE round trip. */
const READ_PAGE = 1000;

/** Events fromSeq..toSeq inclusive (default: to the end), upcast and validated. */
export async function readEvents(
  redis: Redis,
  identity: string,
  fromSeq = 1,
  toSeq?: number,
): Promise<LifecycleEvent[]> {
  if (toSeq !== undefined && toSeq < fromSeq) return [];
  const { events: key } = bottleKeys(identity);
  const end = toSeq === undefined ? '+' : `${toSeq}-0`;
  // Buffer replies: ioredis would otherwise decode every field name and value
  // of every entry into a string; we decode only the values.
  const fetchPage = (start: string) => {
    const page = redis.xrangeBuffer(key, start, end, 'COUNT', READ_PAGE) as Promise<BufferEntry[]>;
    // A corrupt entry can end the read before a prefetched page is awaited.
    page.catch(() => undefined);
    return page;
  };
  const decoder = new EntryDecoder(identity);
  const out: LifecycleEvent[] = [];
  let pending = fetchPage(`${Math.max(1, fromSeq)}-0`);
  for (;;) {
    const page = await pending;
    const more = page.length === READ_PAGE;
    // Ask for the next page before decoding this one, so Redis works while we decode.
    if (more) pending = fetchPage(`(${page[page.length - 1][0].toString('latin1')}`);
    for (const entry of page) out.push(decoder.decode(entry));
    if (!more) return out;
  }
}

/** Field names in the order the append script writes them. */
const FIELD_ORDER = ['type', 'at', 'v', 'data'].map((name) => Buffer.from(name, 'latin1'));

/** Decodes the entries of one read, in stream order. */
class EntryDecoder {
  private lastAtBytes: Buffer | undefined;
  private lastAt = '';

  constructor(private readonly identity: string) {}

  decode([id, fields]: BufferEntry): LifecycleEvent {
    const inAppendOrder =
      fields.length === 8 &&
      sameBytes(fields[0], FIELD_ORDER[0]) &&
      sameBytes(fields[2], FIELD_ORDER[1]) &&
      sameBytes(fields[4], FIELD_ORDER[2]) &&
      sameBytes(fields[6], FIELD_ORDER[3]);
    if (!inAppendOrder) return entryToEvent(this.identity, [id.toString(), fields.map((f) => f.toString())]);
    const [, type, , at, , v, , data] = fields;
    const seq = seqOfId(id);
    return storedFieldsToEvent(this.identity, seq, type.toString(), this.timeOf(at), versionOf(v), data.toString());
  }

  private timeOf(at: Buffer): string {
    if (this.lastAtBytes === undefined || !sameBytes(at, this.lastAtBytes)) {
      this.lastAtBytes = at;
      this.lastAt = at.toString();
    }
    return this.lastAt;
  }
}

function sameBytes(actual: Buffer, expected: Buffer): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) return false;
  return true;
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const ID_SEPARATOR = 0x2d;
/** Longest seq summed digit by digit: beyond it a double could round differently from parseInt. */
const EXACT_DIGITS = 15;

/** seqOf without making the id a string. */
function seqOfId(id: Buffer): number {
  let seq = 0;
  for (let i = 0; i < id.length && i < EXACT_DIGITS; i++) {
    const c = id[i];
    if (c === ID_SEPARATOR && i > 0) return seq;
    if (c < DIGIT_0 || c > DIGIT_9) break;
    seq = seq * 10 + (c - DIGIT_0);
  }
  return seqOf(id.toString('latin1'));
}

/** Number(v) as UTF-8 text, without making a one-digit version a string. */
function versionOf(v: Buffer): number {
  return v.length === 1 && v[0] >= DIGIT_0 && v[0] <= DIGIT_9 ? v[0] - DIGIT_0 : Number(v.toString());
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
  return storedFieldsToEvent(identity, seqOf(id), type, at, v === undefined ? undefined : Number(v), data);
}

function storedFieldsToEvent(
  identity: string,
  seq: number,
  type?: string,
  at?: string,
  v?: number,
  data?: string,
): LifecycleEvent {
  let parsedData: unknown;
  try {
    parsedData = data === undefined ? undefined : JSON.parse(data);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw storedEventError(identity, seq, new Error(`data is not JSON (${reason})`));
  }
  try {
    return parseStoredEvent(seq, type, at, v, parsedData);
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
