import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mintCanaries } from '../src/plan/canaries.js';
import { ChunkInspector, type PatternFinder } from '../src/gateway/scan/body-inspector.js';
import { NeedleSet, type HeldSecret } from '../src/gateway/scan/needles.js';
import { SimpleChunkInspector } from '../test/support/simple-scan.js';
import { median, type Row } from './stats.js';

/**
 * The request-body scan alone, in this process: the chunk inspector against the search it replaced (one
 * search per needle, every regular expression and decoder over every window: test/support/simple-scan.ts)
 * on the same chunks in the same run. The secrets are a bottle's usual ones (the inspection bench's):
 * an Anthropic and a GitHub route secret and the three canaries a launch mints.
 */
const CHUNK_BYTES = 16 * 1024;
const ROUNDS = 3;

function heldSecrets(): HeldSecret[] {
  const values: Record<string, string> = {
    anthropic: `sk-ant-oat01-${randomBytes(48).toString('base64url')}`,
    github: `ghp_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'x')}`,
    ...mintCanaries(),
  };
  return Object.entries(values).map(([rule, value]) => ({
    class: 'known_secret',
    rule,
    fingerprint: rule,
    value: Buffer.from(value),
  }));
}

const audit: PatternFinder = (rule, _match, where) => ({
  action: 'audit',
  reason: 'secret_pattern',
  detail: { class: 'pattern', rule, where },
});

/** The repository's own sources, as an agent's upload of code would be. */
function sourceText(): Buffer {
  const files: Buffer[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(readFileSync(path));
    }
  };
  walk('src');
  return Buffer.concat(files);
}

function repeatedTo(block: Buffer, bytes: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes; at += CHUNK_BYTES) {
    const from = at % block.length;
    chunks.push(block.subarray(from, Math.min(block.length, from + CHUNK_BYTES)));
  }
  return chunks;
}

function secondsFor(chunks: Buffer[], inspect: (chunk: Buffer) => unknown): number {
  const start = process.hrtime.bigint();
  for (const chunk of chunks) inspect(chunk);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function benchScan(): Row[] {
  const needles = new NeedleSet(heldSecrets());
  const inputs: Array<[string, Buffer[]]> = [
    ['100 MB random bytes', repeatedTo(randomBytes(1024 * 1024), 100 * 1024 * 1024)],
    [
      '20 MB base64 of random bytes',
      repeatedTo(Buffer.from(randomBytes(768 * 1024).toString('base64')), 20 * 1024 * 1024),
    ],
    ['20 MB TypeScript source', repeatedTo(sourceText(), 20 * 1024 * 1024)],
  ];
  const rows: Row[] = [];
  for (const [label, chunks] of inputs) {
    const megabytes = chunks.reduce((n, c) => n + c.length, 0) / 1e6;
    const fast: number[] = [];
    const simple: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const inspector = new ChunkInspector(needles, audit, 'body');
      fast.push(megabytes / secondsFor(chunks, (c) => inspector.inspect(c)));
      const reference = new SimpleChunkInspector(needles, audit, 'body');
      simple.push(megabytes / secondsFor(chunks, (c) => reference.inspect(c)));
    }
    rows.push({
      metric: `${label}, 16 KiB chunks, median of ${ROUNDS}: chunk inspector (baseline simple search)`,
      value: median(fast),
      unit: 'MB/s',
      baseline: median(simple),
    });
  }
  return rows;
}
