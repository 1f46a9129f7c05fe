import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  JsonUsageParser,
  SseUsageParser,
  tapUsage,
  type MessageUsage,
  type UsageParser,
} from '../../../src/gateway/usage-reader.js';

const START = {
  type: 'message_start',
  message: {
    id: 'msg_1',
    model: 'claude-sonnet-4-5-20250929',
    content: [],
    usage: { input_tokens: 1200, output_tokens: 1, cache_creation_input_tokens: 300, cache_read_input_tokens: 4000 },
  },
};

function sse(events: Array<[string, unknown]>, withEventLines = true, eol = '\n'): string {
  return events
    .map(([name, data]) => `${withEventLines ? `event: ${name}${eol}` : ''}data: ${JSON.stringify(data)}${eol}${eol}`)
    .join('');
}

const STREAM = sse([
  ['message_start', START],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hi "usage"' } }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: 20 } }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 57 } }],
  ['message_stop', { type: 'message_stop' }],
]);

const EXPECTED: MessageUsage = {
  model: 'claude-sonnet-4-5-20250929',
  input: 1200,
  output: 57,
  cache_creation: 300,
  cache_read: 4000,
};

function feed(parser: UsageParser, text: string, pieceSize: number): MessageUsage | undefined {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += pieceSize) parser.push(bytes.subarray(i, i + pieceSize));
  return parser.end();
}

describe('SseUsageParser', () => {
  it.each([1, 2, 7, 64, 100_000])(
    'reads message_start and the last message_delta however the stream is cut (%i-byte pieces)',
    (size) => {
      expect(feed(new SseUsageParser(), STREAM, size)).toEqual(EXPECTED);
    },
  );

  it('reads the stream cut in two at any byte, the marker word itself included', () => {
    const bytes = Buffer.from(STREAM);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const parser = new SseUsageParser();
      parser.push(bytes.subarray(0, cut));
      parser.push(bytes.subarray(cut));
      expect(parser.end(), `cut at ${cut}`).toEqual(EXPECTED);
    }
  });

  it('reads streams without event lines and with CRLF line ends', () => {
    const events: Array<[string, unknown]> = [
      ['message_start', START],
      ['message_delta', { type: 'message_delta', usage: { output_tokens: 57 } }],
    ];
    expect(feed(new SseUsageParser(), sse(events, false), 5)).toEqual(EXPECTED);
    expect(feed(new SseUsageParser(), sse(events, true, '\r\n'), 3)).toEqual(EXPECTED);
  });

  it('takes every usage field a message_delta updates (cumulative counts, later wins)', () => {
    const text = sse([
      ['message_start', START],
      ['message_delta', { type: 'message_delta', usage: { output_tokens: 9, input_tokens: 1250 } }],
    ]);
    expect(feed(new SseUsageParser(), text, 11)).toEqual({ ...EXPECTED, input: 1250, output: 9 });
  });

  it('skips a line too long to be wanted without keeping it, and still reads the rest', () => {
    const huge = { type: 'content_block_delta', delta: { type: 'text_delta', text: 'x'.repeat(200_000) } };
    const text = sse([
      ['message_start', START],
      ['content_block_delta', huge],
      ['message_delta', { type: 'message_delta', usage: { output_tokens: 57 } }],
    ]);
    expect(feed(new SseUsageParser(), text, 4096)).toEqual(EXPECTED);
  });

  it('reports the prompt usage of a stream cut off before its message_delta', () => {
    const text = sse([['message_start', START]]);
    expect(feed(new SseUsageParser(), text, 10)).toEqual({ ...EXPECTED, output: 1 });
  });

  it('says nothing for a stream without usage, or with malformed data', () => {
    expect(feed(new SseUsageParser(), 'event: ping\ndata: {}\n\n', 3)).toBeUndefined();
    expect(feed(new SseUsageParser(), 'event: message_start\ndata: {not json\n\n', 3)).toBeUndefined();
  });
});

describe('JsonUsageParser', () => {
  const message = (text: string) =>
    JSON.stringify({
      id: 'msg_2',
      type: 'message',
      model: 'claude-haiku-4-5',
      content: [{ type: 'text', text }],
      usage: { input_tokens: 10, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 30 },
    });
  const usage = { model: 'claude-haiku-4-5', input: 10, output: 20, cache_creation: 0, cache_read: 30 };

  it('reads a message body cut anywhere', () => {
    expect(feed(new JsonUsageParser(), message('hello'), 3)).toEqual(usage);
  });

  it('reads a body larger than it keeps by its head and tail', () => {
    const body = message(`"usage":{"input_tokens":999} ${'y'.repeat(3 * 1024 * 1024)}`);
    expect(feed(new JsonUsageParser(), body, 65536)).toEqual(usage);
  });

  it('says nothing for a body that is not a message', () => {
    expect(feed(new JsonUsageParser(), '{"type":"error"}', 4)).toBeUndefined();
    expect(feed(new JsonUsageParser(), 'not json', 4)).toBeUndefined();
  });
});

describe('tapUsage', () => {
  function upstream(headers: Record<string, string>): IncomingMessage & PassThrough {
    const stream = new PassThrough() as unknown as IncomingMessage & PassThrough;
    Object.assign(stream, { headers });
    return stream;
  }

  it('reads a gzip-encoded stream from a copy while the bytes pass on unchanged', async () => {
    const body = gzipSync(Buffer.from(STREAM));
    const res = upstream({ 'content-type': 'text/event-stream; charset=utf-8', 'content-encoding': 'gzip' });
    const seen = new Promise<MessageUsage>((resolve) => tapUsage(res, resolve));
    const forwarded: Buffer[] = [];
    res.on('data', (chunk: Buffer) => forwarded.push(chunk));
    for (let i = 0; i < body.length; i += 13) res.write(body.subarray(i, i + 13));
    res.end();
    expect(await seen).toEqual(EXPECTED);
    expect(Buffer.concat(forwarded).equals(body)).toBe(true);
  });

  it('leaves bodies of other types and unknown encodings alone', () => {
    let called = false;
    tapUsage(upstream({ 'content-type': 'text/html' }), () => (called = true));
    tapUsage(upstream({ 'content-type': 'application/json', 'content-encoding': 'zstd' }), () => (called = true));
    expect(called).toBe(false);
  });
});
