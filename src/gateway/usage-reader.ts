import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import type { TokenCounts } from '../shared/token-usage.js';

/**
 * Reads the model and the `usage` block of one Messages API response from a copy of its bytes, as
 * they pass: a JSON body (the usage comes at its end) or a server-sent event stream (message_start
 * carries the model and the prompt's usage, each message_delta the cumulative output). The response
 * itself is never held or delayed: the reader only looks at chunks the proxy forwards anyway, keeps
 * at most one SSE line or a bounded slice of a JSON body, and gives up on what it cannot read.
 */
export interface MessageUsage extends TokenCounts {
  model: string;
}

/** An SSE line longer than this is not one the reader wants (message_start and message_delta are small). */
const MAX_SSE_LINE = 64 * 1024;
/** A JSON body is parsed whole up to this size; past it only its head (model) and tail (usage) are kept. */
const MAX_JSON_BODY = 1024 * 1024;
const JSON_EDGE = 16 * 1024;
const MAX_MODEL_NAME = 200;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const DATA_PREFIX = Buffer.from('data:');
/** In the JSON of every event the reader wants ("type":"message_start" / "message_delta"). */
const MARKER = Buffer.from('message_');
const EMPTY = Buffer.alloc(0);

type UsageFields = Partial<Record<keyof TokenCounts, number>>;

/** The API's field names for each of ours. */
const API_FIELDS: ReadonlyArray<[keyof TokenCounts, string]> = [
  ['input', 'input_tokens'],
  ['output', 'output_tokens'],
  ['cache_creation', 'cache_creation_input_tokens'],
  ['cache_read', 'cache_read_input_tokens'],
];

function usageFields(raw: unknown): UsageFields {
  const fields: UsageFields = {};
  if (typeof raw !== 'object' || raw === null) return fields;
  for (const [ours, theirs] of API_FIELDS) {
    const value = (raw as Record<string, unknown>)[theirs];
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) fields[ours] = value;
  }
  return fields;
}

function modelName(raw: unknown): string | undefined {
  return typeof raw === 'string' && raw.length > 0 && raw.length <= MAX_MODEL_NAME ? raw : undefined;
}

/** Accumulates what the pieces of one response say; message_delta values are cumulative, so later wins. */
class UsageSoFar {
  model: string | undefined;
  fields: UsageFields = {};
  seen = false;

  take(model: string | undefined, fields: UsageFields): void {
    if (model !== undefined && this.model === undefined) this.model = model;
    if (Object.keys(fields).length > 0) this.seen = true;
    Object.assign(this.fields, fields);
  }

  result(): MessageUsage | undefined {
    if (!this.seen) return undefined;
    const f = this.fields;
    return {
      model: this.model ?? 'unknown',
      input: f.input ?? 0,
      output: f.output ?? 0,
      cache_creation: f.cache_creation ?? 0,
      cache_read: f.cache_read ?? 0,
    };
  }
}

export interface UsageParser {
  push(chunk: Buffer): void;
  /** The usage read, once the body has ended (or was cut off); undefined when the body held none. */
  end(): MessageUsage | undefined;
}

/**
 * Reads the data lines of message_start and message_delta. Both name their type in their JSON, so
 * only lines holding "message_" are looked at: a native search over each chunk finds them, and the
 * text deltas that make up nearly all of a stream are neither split into lines nor copied. Only
 * the line a chunk ends in is kept (copied, bounded) until the next chunk completes it.
 */
export class SseUsageParser implements UsageParser {
  private readonly usage = new UsageSoFar();
  /** The start of the line the last chunk ended in. */
  private carry: Buffer = EMPTY;
  /** That line grew past MAX_SSE_LINE: it is dropped up to its end. */
  private skipping = false;

  push(chunk: Buffer): void {
    let pos = 0;
    if (this.skipping || this.carry.length > 0) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl < 0) return this.hold(chunk);
      if (!this.skipping) this.lookAtJoined(this.carry, chunk.subarray(0, nl));
      this.carry = EMPTY;
      this.skipping = false;
      pos = nl + 1;
    }
    for (let marker = chunk.indexOf(MARKER, pos); marker >= 0; marker = chunk.indexOf(MARKER, pos)) {
      const lineEnd = chunk.indexOf(NEWLINE, marker);
      if (lineEnd < 0) break;
      this.handle(chunk.subarray(Math.max(pos, chunk.lastIndexOf(NEWLINE, marker) + 1), lineEnd));
      pos = lineEnd + 1;
    }
    const rest = Math.max(pos, chunk.lastIndexOf(NEWLINE) + 1);
    if (rest < chunk.length) this.hold(chunk.subarray(rest));
  }

  end(): MessageUsage | undefined {
    if (!this.skipping && this.carry.length > 0) this.lookAt(this.carry);
    this.carry = EMPTY;
    return this.usage.result();
  }

  private hold(piece: Buffer): void {
    if (this.skipping) return;
    if (this.carry.length + piece.length > MAX_SSE_LINE) {
      this.carry = EMPTY;
      this.skipping = true;
      return;
    }
    // A copy: the chunk belongs to the stream, which may reuse its memory.
    this.carry = this.carry.length > 0 ? Buffer.concat([this.carry, piece]) : Buffer.from(piece);
  }

  private lookAt(line: Buffer): void {
    if (line.indexOf(MARKER) >= 0) this.handle(line);
  }

  /** A line cut between two chunks is joined only when it holds the marker, which most lines do not. */
  private lookAtJoined(head: Buffer, tail: Buffer): void {
    if (head.indexOf(MARKER) >= 0 || tail.indexOf(MARKER) >= 0 || markerAcross(head, tail))
      this.handle(Buffer.concat([head, tail]));
  }

  private handle(line: Buffer): void {
    if (line.length > MAX_SSE_LINE || !startsWith(line, DATA_PREFIX)) return;
    const length = line[line.length - 1] === CARRIAGE_RETURN ? line.length - 1 : line.length;
    let data: unknown;
    try {
      data = JSON.parse(line.toString('utf8', DATA_PREFIX.length, length));
    } catch {
      return;
    }
    if (typeof data !== 'object' || data === null) return;
    const record = data as { type?: unknown; message?: { model?: unknown; usage?: unknown }; usage?: unknown };
    if (record.type === 'message_start') {
      this.usage.take(modelName(record.message?.model), usageFields(record.message?.usage));
    } else if (record.type === 'message_delta') {
      this.usage.take(undefined, usageFields(record.usage));
    }
  }
}

/** The marker begins at the end of `head` and finishes at the start of `tail`. */
function markerAcross(head: Buffer, tail: Buffer): boolean {
  for (let k = 1; k < MARKER.length; k++) {
    if (head.length < k || tail.length < MARKER.length - k) continue;
    if (
      head.compare(MARKER, 0, k, head.length - k, head.length) === 0 &&
      tail.compare(MARKER, k, MARKER.length, 0, MARKER.length - k) === 0
    )
      return true;
  }
  return false;
}

function startsWith(line: Buffer, prefix: Buffer): boolean {
  return line.length >= prefix.length && line.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** Parses a JSON message whole when it is small enough; a larger one by its head and tail. */
export class JsonUsageParser implements UsageParser {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private head: Buffer | undefined;
  private tail: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    if (this.head === undefined && this.bytes + chunk.length <= MAX_JSON_BODY) {
      this.chunks.push(Buffer.from(chunk));
      this.bytes += chunk.length;
      return;
    }
    if (this.head === undefined) {
      const all = Buffer.concat([...this.chunks, chunk]);
      this.head = all.subarray(0, JSON_EDGE);
      this.tail = Buffer.from(all.subarray(all.length - JSON_EDGE));
      this.chunks = [];
      return;
    }
    const joined = Buffer.concat([this.tail, chunk]);
    this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - JSON_EDGE)));
  }

  end(): MessageUsage | undefined {
    const usage = new UsageSoFar();
    if (this.head === undefined) {
      try {
        const body = JSON.parse(Buffer.concat(this.chunks).toString('utf8')) as { model?: unknown; usage?: unknown };
        usage.take(modelName(body?.model), usageFields(body?.usage));
      } catch {
        return undefined;
      }
    } else {
      usage.take(modelInHead(this.head.toString('utf8')), usageInTail(this.tail.toString('utf8')));
    }
    this.chunks = [];
    return usage.result();
  }
}

/** The message's `model` is one of its first fields, before any content. */
function modelInHead(head: string): string | undefined {
  return modelName(/"model"\s*:\s*"([^"\\]{1,200})"/.exec(head)?.[1]);
}

/** The message's `usage` object is one of its last fields, after all content. */
function usageInTail(tail: string): UsageFields {
  const at = tail.lastIndexOf('"usage"');
  if (at < 0) return {};
  const open = tail.indexOf('{', at);
  const close = tail.indexOf('}', open);
  if (open < 0 || close < 0) return {};
  try {
    return usageFields(JSON.parse(tail.slice(open, close + 1)));
  } catch {
    return {};
  }
}

/** The parser for a response of this content type; undefined for one that cannot hold a message. */
export function parserFor(contentType: string | undefined): UsageParser | undefined {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'text/event-stream') return new SseUsageParser();
  if (type === 'application/json') return new JsonUsageParser();
  return undefined;
}

function decoderFor(encoding: string | undefined): Transform | null | undefined {
  switch ((encoding ?? 'identity').trim().toLowerCase()) {
    case 'identity':
    case '':
      return null;
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

/**
 * Taps an upstream response the proxy is forwarding: `onUsage` is called once, when the body ends
 * or is cut off, with what the body said (nothing when it said nothing readable). The tap only
 * listens to `data` events the forwarding pipe produces anyway; a compressed body is inflated on
 * the side, from a copy.
 */
export function tapUsage(upstream: IncomingMessage, onUsage: (usage: MessageUsage) => void): void {
  const parser = parserFor(upstream.headers['content-type']);
  if (!parser) return;
  const decoder = decoderFor(upstream.headers['content-encoding']);
  if (decoder === undefined) return;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    const usage = parser.end();
    if (usage) onUsage(usage);
  };
  if (decoder === null) {
    upstream.on('data', (chunk: Buffer) => parser.push(chunk));
  } else {
    decoder.on('data', (chunk: Buffer) => parser.push(chunk));
    decoder.on('error', () => {
      done = true; // a body that does not inflate says nothing the reader can trust
    });
    decoder.on('end', finish);
    upstream.on('data', (chunk: Buffer) => decoder.write(chunk));
  }
  let ended = false;
  const bodyEnded = () => {
    if (ended) return;
    ended = true;
    if (decoder) decoder.end();
    else finish();
  };
  upstream.on('end', bodyEnded);
  upstream.on('close', bodyEnded);
}
