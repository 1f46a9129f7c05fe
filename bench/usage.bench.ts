import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mock } from 'node:test';
import { startGateway, type RunningGateway } from '../src/gateway/gateway.js';
import type { GatewayLine } from '../src/gateway/protocol.js';
import { median, type Row } from './stats.js';

/**
 * The usage reader on the hot path: a long SSE reply from a local fake upstream through the
 * credential proxy, with the reader (the default) and without it (`meterUsage: false`), alternating
 * in one run: time to the first byte and to the end, and the CPU of 1,000 short replies. Then the
 * log growth of a busy agent: every line the gateway writes in a bottle-hour at one call per second,
 * on a mocked clock.
 */

const LONG_EVENTS = 4000;
const SHORT_EVENTS = 40;

function sseReply(events: number): Buffer[] {
  const chunks: string[] = [];
  const start = {
    type: 'message_start',
    message: {
      id: 'msg_bench',
      model: 'claude-sonnet-4-5',
      content: [],
      usage: { input_tokens: 5000, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 20000 },
    },
  };
  chunks.push(`event: message_start\ndata: ${JSON.stringify(start)}\n\n`);
  for (let i = 0; i < events; i++) {
    const delta = {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: `token ${i} of a reply ` },
    };
    chunks.push(`event: content_block_delta\ndata: ${JSON.stringify(delta)}\n\n`);
  }
  const end = { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: events } };
  chunks.push(
    `event: message_delta\ndata: ${JSON.stringify(end)}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n`,
  );
  // Sent in pieces of about 1 KiB, as a streaming upstream writes them.
  const pieces: Buffer[] = [];
  let current = '';
  for (const c of chunks) {
    current += c;
    if (current.length >= 1024) {
      pieces.push(Buffer.from(current));
      current = '';
    }
  }
  if (current) pieces.push(Buffer.from(current));
  return pieces;
}

async function upstream(): Promise<Server> {
  const long = sseReply(LONG_EVENTS);
  const short = sseReply(SHORT_EVENTS);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const pieces = req.headers['x-bench-length'] === 'short' ? short : long;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const next = () => {
        while (i < pieces.length) {
          if (!res.write(pieces[i++])) return void res.once('drain', next);
          if (i % 16 === 0) return void setImmediate(next);
        }
        res.end();
      };
      next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function gatewayTo(
  port: number,
  meterUsage: boolean,
  lines: GatewayLine[],
  now?: () => number,
): Promise<RunningGateway> {
  return startGateway(
    {
      identity: 'bench-u5g3x',
      proxy_port: 0,
      credential_port: 0,
      extra_hosts: { 'anthropic.test': '127.0.0.1' },
      routes: [{ id: 'a', role: 'anthropic-base-url', upstream: `http://anthropic.test:${port}`, auth: 'oauth' }],
      limits: { max_header_bytes: 32768, requests_per_minute: 1_000_000 },
    },
    { a: 'sk-bench' },
    { onDecision: (l) => lines.push(l), log: () => {}, meterUsage, ...(now ? { now } : {}) },
  );
}

function call(port: number, length: 'long' | 'short'): Promise<{ firstMs: number; totalMs: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/messages',
        method: 'POST',
        headers: { 'x-bench-length': length, 'content-type': 'application/json' },
      },
      (res) => {
        let firstMs = 0;
        res.on('data', () => {
          if (firstMs === 0) firstMs = performance.now() - t0;
        });
        res.on('end', () => resolve({ firstMs, totalMs: performance.now() - t0 }));
      },
    );
    req.on('error', reject);
    req.end('{"model":"claude-sonnet-4-5","stream":true,"messages":[]}');
  });
}

export async function benchUsage(): Promise<Row[]> {
  const server = await upstream();
  const port = (server.address() as AddressInfo).port;
  const lines: GatewayLine[] = [];
  const metered = await gatewayTo(port, true, lines);
  const plain = await gatewayTo(port, false, []);
  try {
    for (let i = 0; i < 5; i++)
      await Promise.all([call(metered.credentialPort, 'long'), call(plain.credentialPort, 'long')]);
    const withReader = { first: [] as number[], total: [] as number[] };
    const without = { first: [] as number[], total: [] as number[] };
    for (let i = 0; i < 40; i++) {
      const [a, b] = i % 2 === 0 ? [metered, plain] : [plain, metered];
      for (const gw of [a, b]) {
        const r = await call(gw.credentialPort, 'long');
        const into = gw === metered ? withReader : without;
        into.first.push(r.firstMs);
        into.total.push(r.totalMs);
      }
    }
    const cpu = async (gw: RunningGateway) => {
      const before = process.cpuUsage();
      for (let i = 0; i < 1000; i++) await call(gw.credentialPort, 'short');
      const used = process.cpuUsage(before);
      return (used.user + used.system) / 1000;
    };
    const cpuPlain = await cpu(plain);
    const cpuMetered = await cpu(metered);
    await metered.close();
    const usageLines = lines.filter((l) => l.t === 'usage').length;
    const busyHour = await linesOfABusyHour(port);
    const allLines = [...busyHour.values()].reduce((a, b) => a + b, 0);
    const perKind = [...busyHour].map(([kind, n]) => `${kind} ${n}`).join(', ');
    return [
      {
        metric: `time to first byte, ${LONG_EVENTS}-event SSE reply (median of 40)`,
        value: median(withReader.first),
        baseline: median(without.first),
        unit: 'ms',
        target: '<= 1.05x',
      },
      {
        metric: `total time, ${LONG_EVENTS}-event SSE reply (median of 40)`,
        value: median(withReader.total),
        baseline: median(without.total),
        unit: 'ms',
        target: '<= 1.05x',
      },
      {
        metric: `CPU of 1,000 ${SHORT_EVENTS}-event replies (whole process: client, proxy, upstream)`,
        value: cpuMetered,
        baseline: cpuPlain,
        unit: 'ms',
      },
      { metric: 'usage lines written for those 1,085 calls (default interval)', value: usageLines, unit: 'lines' },
      {
        metric: `events per bottle-hour at one call per second, every kind (${perKind})`,
        value: allLines,
        unit: 'events',
        target: '<= 1000',
      },
    ];
  } finally {
    await plain.close();
    await metered.close().catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * A busy agent's hour: one Messages API call per simulated second through the in-process gateway
 * with its default intervals, the gateway's timers and clock mocked, so the hour passes in seconds.
 * Every line the gateway writes becomes one event in the bottle's log, so they are all counted.
 */
async function linesOfABusyHour(port: number): Promise<Map<string, number>> {
  let now = Date.parse('2026-12-08T00:00:00Z');
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const lines: GatewayLine[] = [];
  try {
    const gw = await gatewayTo(port, true, lines, () => now);
    for (let second = 0; second < 3600; second++) {
      await call(gw.credentialPort, 'short');
      now += 1000;
      mock.timers.tick(1000);
    }
    await gw.close();
  } finally {
    mock.timers.reset();
  }
  const byKind = new Map<string, number>();
  for (const line of lines) {
    const kind = line.t === 'egress' ? `egress.${line.decision}` : line.t;
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  }
  return byKind;
}
