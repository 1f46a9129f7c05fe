#!/usr/bin/env node
// Regenerates bench/data/agent-egress-bench.json from pipelock's public corpus
// (luckyPipewrench/agent-egress-bench) checked out as a git repository:
//   node scripts/convert-agent-egress-bench.mjs <corpus-git-dir> [commit]
// Keeps only what each case tests (id, category, the request or WebSocket frames,
// the expected verdict), never the corpus's prose. Cases an HTTP egress gateway
// cannot see (MCP messages, response bodies) are kept as `skipped` with a reason.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CATEGORIES = [
  'url',
  'request-body',
  'headers',
  'hostname-exfiltration',
  'encoding-evasion',
  'ssrf-bypass',
  'crypto-financial',
  'websocket-dlp',
  'false-positive',
];
const [gitDir, commitArg = 'HEAD'] = process.argv.slice(2);
if (!gitDir) {
  console.error('usage: convert-agent-egress-bench.mjs <corpus-git-dir> [commit]');
  process.exit(2);
}
const git = (...args) => execFileSync('git', ['-C', gitDir, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
const commit = git('rev-parse', commitArg).trim();

function request(payload) {
  const out = { method: payload.method ?? 'GET', url: payload.url };
  const headers = { ...(payload.headers ?? {}) };
  if (payload.content_type) headers['Content-Type'] = payload.content_type;
  if (Object.keys(headers).length > 0) out.headers = headers;
  if (payload.body !== undefined) out.body = payload.body;
  return out;
}

function frames(payload) {
  return payload.frames.map((f) => {
    const frame = { opcode: f.opcode, payload: f.payload };
    if (f.fin === false) frame.fin = false;
    if (f.rsv1) frame.rsv1 = true;
    if (f.encoding) frame.encoding = f.encoding;
    return frame;
  });
}

/** An MCP `fetch` tool call is, on the wire, the GET of its URL: that request is what the gateway sees. */
function mcpFetchUrl(c) {
  if (c.input_type !== 'mcp_tool_call') return undefined;
  const calls = c.payload.jsonrpc_messages ?? [];
  const call = calls.length === 1 ? calls[0].params : undefined;
  return call?.name === 'fetch' && typeof call.arguments?.url === 'string' ? call.arguments.url : undefined;
}

const cases = [];
const skipped = [];
const files = git('ls-tree', '-r', '--name-only', commit, 'cases/').split('\n').filter(Boolean).sort();
for (const file of files) {
  const category = file.split('/')[1];
  if (!CATEGORIES.includes(category) || !file.endsWith('.json')) continue;
  const c = JSON.parse(git('show', `${commit}:${file}`));
  const expect = c.expected_verdict;
  const fetched = mcpFetchUrl(c);
  if (fetched) cases.push({ id: c.id, category, expect, from: 'mcp_fetch', request: { method: 'GET', url: fetched } });
  else if (c.input_type.startsWith('mcp_')) skipped.push({ id: c.id, category, expect, reason: 'mcp' });
  else if (c.input_type === 'response_content') skipped.push({ id: c.id, category, expect, reason: 'response' });
  else if (c.input_type === 'websocket_frame')
    cases.push({ id: c.id, category, expect, websocket: { url: c.payload.url, frames: frames(c.payload) } });
  else cases.push({ id: c.id, category, expect, request: request(c.payload) });
}

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'data', 'agent-egress-bench.json');
const data = {
  corpus: 'luckyPipewrench/agent-egress-bench',
  commit,
  categories: CATEGORIES,
  cases,
  skipped,
};
writeFileSync(out, JSON.stringify(data, null, 2) + '\n');
console.log(`${cases.length} cases, ${skipped.length} skipped -> ${out}`);
