import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientFrame } from './websocket-client-frames.js';

/**
 * pipelock's public corpus (bench/data/agent-egress-bench.json, made by
 * scripts/convert-agent-egress-bench.mjs) and how each case is aimed at a
 * local server: every name gets `.test` appended (so nothing can resolve it
 * outside the bottle's own pins) and the scheme becomes plain HTTP to the
 * server's port, through the gateway's proxy. The gateway scans plain HTTP and
 * inspected HTTPS at the same forwarding point (src/gateway/inspected-forward.ts),
 * so the scheme does not change what inspection sees. IP literals (the SSRF
 * cases) are kept as written: the gateway must refuse them without connecting.
 */
export interface CorpusRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface CorpusFrame {
  opcode: ClientFrame['opcode'];
  payload: string;
  fin?: boolean;
  rsv1?: boolean;
  encoding?: 'base64';
}

export interface CorpusCase {
  id: string;
  category: string;
  expect: 'block' | 'allow';
  from?: string;
  request?: CorpusRequest;
  websocket?: { url: string; frames: CorpusFrame[] };
}

export interface Corpus {
  corpus: string;
  commit: string;
  categories: string[];
  cases: CorpusCase[];
  skipped: Array<{ id: string; category: string; expect: string; reason: string }>;
}

/** bench/ itself, whether this runs from source or from the bench bundle in .bottle-test/. */
export const BENCH_DIR = existsSync(join(import.meta.dirname, 'data'))
  ? import.meta.dirname
  : join(import.meta.dirname, '..', 'bench');
export const CORPUS_FILE = join(BENCH_DIR, 'data', 'agent-egress-bench.json');

export function loadCorpus(): Corpus {
  return JSON.parse(readFileSync(CORPUS_FILE, 'utf8')) as Corpus;
}

/** A case as it is sent: to `host:port` through the proxy, absolute-form. */
export interface CorpusTarget {
  /** The name as the gateway sees it (lowercase), or the IP literal as written. */
  host: string;
  /** The allowlist entry that lets it through when only inspection should stop it (`*.<top-level domain>.test`). */
  wildcard: string;
  isLiteral: boolean;
  method: string;
  /** Absolute-form request target: http://host:port/path?query. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  frames?: ClientFrame[];
}

const LITERAL = /^(?:\[.*\]|[0-9.]+|0x[0-9a-f]+)$/i;

export function mappedHost(host: string): string {
  return LITERAL.test(host) ? host : `${host.toLowerCase()}.test`;
}

export function corpusTarget(c: CorpusCase, port: number): CorpusTarget {
  const url = c.request?.url ?? c.websocket!.url;
  const parts = /^[a-z]+:\/\/([^/?#]+)(.*)$/i.exec(url);
  if (!parts) throw new Error(`${c.id}: not an absolute URL`);
  const original = parts[1].replace(/:\d+$/, '');
  const host = mappedHost(original);
  const isLiteral = host === original;
  const labels = host.split('.');
  const wildcard = `*.${labels.slice(-2).join('.')}`;
  // What a client does with a character a request line cannot carry: its UTF-8 bytes, percent-encoded.
  const rest = (parts[2] || '/').replace(/[^\x21-\x7e]/gu, (ch) => encodeURIComponent(ch));
  const path = `http://${isLiteral ? original : host}${isLiteral ? '' : `:${port}`}${rest}`;
  const headers = { ...(c.request?.headers ?? {}) };
  const frames = c.websocket?.frames.map((f) => ({
    opcode: f.opcode,
    payload: Buffer.from(f.payload, f.encoding === 'base64' ? 'base64' : 'utf8'),
    fin: f.fin,
    rsv1: f.rsv1,
  }));
  return {
    host,
    wildcard,
    isLiteral,
    method: c.request?.method ?? 'GET',
    path,
    headers,
    body: c.request?.body,
    frames,
  };
}

/**
 * Cases the gateway refuses by its allowlist, not by inspection: IP literals (SSRF) and a domain on a
 * blocklist. The allowlist is the blocklist's inverse; these are sent to names that are not on it, and
 * the refusal is proven by the gateway's decision without any connection.
 */
export function refusedByAllowlist(c: CorpusCase): boolean {
  return c.category === 'ssrf-bypass' || /-ssrf-|domain-blocklist/.test(c.id);
}

/** Block cases the scanner lets through by choice, and why (shown in the bench's table). */
export const KNOWN_MISSES: Record<string, string> = {};
