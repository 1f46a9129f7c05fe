/**
 * A STAND-IN for the Anthropic Messages API, for tests only: a loopback HTTP
 * server that records every request (headers and body) and answers
 * `POST /v1/messages` with either a JSON message or, for `"stream": true`,
 * server-sent events in the real event order (message_start,
 * content_block_start, content_block_delta/text_delta, content_block_stop,
 * message_delta, message_stop). It does not model anything else of the API.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeAnthropicOptions {
  /** The assistant's reply text; streamed as one text_delta per word. */
  reply?: string;
  /** Pause between streamed events. */
  eventDelayMs?: number;
  /**
   * Hold every stream after its first event until releaseStream() is called,
   * so a test can prove a proxy forwards chunks as they come.
   */
  holdStreamAfterFirstEvent?: boolean;
  /**
   * Address to listen on (default 127.0.0.1). A bottle's gateway reaches the
   * Docker host through its egress bridge's gateway address, so a fake used
   * by a real bottle listens on 0.0.0.0.
   */
  host?: string;
  /**
   * Fixed usage for every reply instead of the rough count: JSON replies carry all of it; streams
   * carry input and cache counts in message_start and the output in message_delta (cumulative, as
   * the API sends it).
   */
  usage?: { input: number; output: number; cache_creation: number; cache_read: number };
  /** The model name replies report (default: the request's). */
  model?: string;
  /**
   * Chooses the answer to each `POST /v1/messages` (index counts them from 0): the text reply, a
   * tool call, or an API error. Undefined (or no `respond`) answers with the text reply.
   */
  respond?: (call: { body: string; index: number }) => FakeReply | undefined;
}

/**
 * One answer of the fake: text (`reply` by default), a tool_use block (stop_reason tool_use) for the
 * client to run, or an error in the API's shape with its status and any headers.
 */
export type FakeReply =
  | { text: string }
  | { toolUse: { name: string; input: Record<string, unknown> } }
  | { status: number; error: { type: string; message: string }; headers?: Record<string, string> };

export interface FakeAnthropic {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  requests: RecordedRequest[];
  /** Lets held streams continue (see holdStreamAfterFirstEvent). */
  releaseStream(): void;
  /** Whether a stream has sent its final event (message_stop). */
  streamsFinished(): number;
  close(): Promise<void>;
}

const MODEL_FALLBACK = 'claude-fake-model';

export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const reply = options.reply ?? 'Hello from the fake Anthropic API.';
  const requests: RecordedRequest[] = [];
  let release: () => void = () => {};
  let released = new Promise<void>((resolve) => (release = resolve));
  let finished = 0;
  let messageCalls = 0;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      answer(req, res, body).catch(() => res.destroy());
    });
  });

  async function answer(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'POST' && path === '/v1/messages/count_tokens') {
      return json(res, 200, { input_tokens: countTokens(body) });
    }
    if (req.method !== 'POST' || path !== '/v1/messages') {
      return json(res, 404, {
        type: 'error',
        error: { type: 'not_found_error', message: `fake: no route ${req.method} ${path}` },
      });
    }
    let request: { model?: string; stream?: boolean };
    try {
      request = JSON.parse(body) as typeof request;
    } catch {
      return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'body is not JSON' } });
    }
    const scripted = options.respond?.({ body, index: messageCalls++ });
    if (scripted && 'status' in scripted) {
      return json(res, scripted.status, { type: 'error', error: scripted.error }, scripted.headers);
    }
    const text = scripted && 'text' in scripted ? scripted.text : reply;
    const toolUse = scripted && 'toolUse' in scripted ? scripted.toolUse : undefined;
    const model = options.model ?? request.model ?? MODEL_FALLBACK;
    const id = `msg_fake_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const fixed = options.usage;
    const inputTokens = fixed?.input ?? countTokens(body);
    const outputTokens = fixed?.output ?? text.split(/\s+/).length;
    const cache = fixed
      ? { cache_creation_input_tokens: fixed.cache_creation, cache_read_input_tokens: fixed.cache_read }
      : {};
    const toolUseId = `toolu_fake_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const stopReason = toolUse ? 'tool_use' : 'end_turn';
    if (!request.stream) {
      return json(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: toolUse
          ? [{ type: 'tool_use', id: toolUseId, name: toolUse.name, input: toolUse.input }]
          : [{ type: 'text', text }],
        stop_reason: stopReason,
        stop_sequence: null,
        usage: { input_tokens: inputTokens, output_tokens: outputTokens, ...cache },
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    const events: Array<[string, unknown]> = [
      [
        'message_start',
        {
          type: 'message_start',
          message: {
            id,
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: inputTokens, output_tokens: 1, ...cache },
          },
        },
      ],
      ...(toolUse ? toolUseEvents(toolUseId, toolUse) : textEvents(text)),
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'message_delta',
        {
          type: 'message_delta',
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: { output_tokens: outputTokens },
        },
      ],
      ['message_stop', { type: 'message_stop' }],
    ];
    for (const [index, [event, data]] of events.entries()) {
      if (res.destroyed) return;
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (index === 0 && options.holdStreamAfterFirstEvent) await released;
      else if (options.eventDelayMs) await new Promise((resolve) => setTimeout(resolve, options.eventDelayMs));
    }
    finished += 1;
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    releaseStream: () => {
      release();
      released = new Promise<void>((resolve) => (release = resolve));
    },
    streamsFinished: () => finished,
    close: () =>
      new Promise<void>((resolve) => {
        release();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type StreamEvent = [string, unknown];

/** A text block's start and one text_delta per word. */
function textEvents(text: string): StreamEvent[] {
  return [
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ...text
      .split(/(?<= )/)
      .map((word): StreamEvent => [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: word } },
      ]),
  ];
}

/** A tool_use block's start and its input as one input_json_delta, as the API streams it. */
function toolUseEvents(id: string, toolUse: { name: string; input: Record<string, unknown> }): StreamEvent[] {
  return [
    [
      'content_block_start',
      { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id, name: toolUse.name, input: {} } },
    ],
    [
      'content_block_delta',
      {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(toolUse.input) },
      },
    ],
  ];
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A rough stand-in for tokenisation: about four characters per token. */
function countTokens(body: string): number {
  return Math.max(1, Math.ceil(body.length / 4));
}
