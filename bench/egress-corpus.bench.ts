// `npm run bench egress-corpus` (by name only: a real bottle): pipelock's agent-egress-bench corpus,
// each case sent from inside a real bottle (runsc) to a local server its name is pinned to and allowed
// at, so only inspection can stop it. Per category: block cases blocked, allow cases passed.
import { startHarness, type BottleHarness } from '../test/support/cli-harness.js';
import { corpusTarget, KNOWN_MISSES, loadCorpus, refusedByAllowlist, type CorpusCase } from './egress-corpus-data.js';
import {
  rawRequest,
  runExchanges,
  startBenchBottle,
  startBenchServer,
  webSocketUpgrade,
  type BenchServer,
  type Exchange,
  type ExchangeResult,
} from './egress-run.js';
import { encodeClientFrames } from './websocket-client-frames.js';
import { exfilBlocked, runExfil, type ExfilResult } from './exfil-table.js';

export function exfilTable(results: readonly ExfilResult[]): string {
  const lines = ['| way | result | recorded as |', '|---|---|---|'];
  for (const { row, result } of results) {
    const blocked = exfilBlocked(row, result);
    const d = result.denied;
    const recorded = d
      ? `${d.reason}` +
        (d.rule ? ` (${d.rule} in ${d.where}${d.fingerprint ? `, ${d.fingerprint}` : ''})` : '') +
        (result.alarm ? ' + egress.alarm' : '')
      : row.refusedWith
        ? `${row.refusedWith}: ${row.reason ?? ''}`
        : '-';
    lines.push(`| ${row.way} | ${blocked ? 'blocked' : `passes: ${row.reason ?? 'NOT EXPECTED'}`} | ${recorded} |`);
  }
  const blocked = results.filter((r) => exfilBlocked(r.row, r.result)).length;
  lines.push('', `${blocked} of ${results.length} ways blocked; the others pass for the reason given.`);
  return lines.join('\n');
}

export interface CategoryRow {
  category: string;
  blockCases: number;
  blocked: number;
  allowCases: number;
  passed: number;
}

export interface CorpusRun {
  rows: CategoryRow[];
  results: Array<ExchangeResult & { case: CorpusCase }>;
}

function exchangeFor(c: CorpusCase, port: number): Exchange {
  const t = corpusTarget(c, port);
  const hostHeader = t.isLiteral ? t.host : `${t.host}:${port}`;
  // The gateway takes WebSocket upgrades inside a tunnel (plain or inspected TLS), so: CONNECT, then the upgrade.
  if (t.frames)
    return {
      id: c.id,
      host: t.host,
      pieces: [
        Buffer.from(`CONNECT ${hostHeader} HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`, 'latin1'),
        Buffer.alloc(0),
        webSocketUpgrade(c.id, t.path.replace(/^http:\/\/[^/]*/, ''), hostHeader),
      ],
      frames: encodeClientFrames(t.frames),
    };
  const body = t.body === undefined ? undefined : Buffer.from(t.body, 'utf8');
  return {
    id: c.id,
    host: t.host,
    pieces: [rawRequest({ id: c.id, method: t.method, target: t.path, hostHeader, headers: t.headers, body })],
  };
}

/** The allowlist and pins that let every case through but for inspection (allowlist-refused ones excepted). */
export function corpusBottle(cases: readonly CorpusCase[], port: number): { allow: string[]; hosts: string[] } {
  const targets = cases.filter((c) => !refusedByAllowlist(c)).map((c) => corpusTarget(c, port));
  return {
    allow: [...new Set(targets.map((t) => `${t.wildcard}:${port}`))],
    hosts: [...new Set(targets.map((t) => t.host))],
  };
}

export async function runCorpus(h: BottleHarness, runtime: 'runsc' | 'runc'): Promise<CorpusRun> {
  const corpus = loadCorpus();
  let server: BenchServer | undefined;
  try {
    server = await startBenchServer();
    const port = server.port;
    const identity = await startBenchBottle(h, { ...corpusBottle(corpus.cases, port), runtime });
    const exchanges = corpus.cases.map((c) => exchangeFor(c, port));
    const results = (await runExchanges(h, identity, server, exchanges)).map((r, i) => ({
      ...r,
      case: corpus.cases[i],
    }));
    const rows = corpus.categories.map((category) => {
      const mine = results.filter((r) => r.case.category === category);
      const block = mine.filter((r) => r.case.expect === 'block');
      const allow = mine.filter((r) => r.case.expect === 'allow');
      return {
        category,
        blockCases: block.length,
        blocked: block.filter((r) => !r.arrived && r.denied !== undefined).length,
        allowCases: allow.length,
        passed: allow.filter((r) => r.arrived).length,
      };
    });
    return { rows, results };
  } finally {
    await server?.stop();
  }
}

export function corpusTable(run: CorpusRun): string {
  const corpus = loadCorpus();
  const lines = [
    `  corpus ${corpus.corpus} @ ${corpus.commit.slice(0, 7)}: ${run.results.length} cases sent, ` +
      `${corpus.skipped.length} skipped (${corpus.skipped.map((s) => `${s.id}: ${s.reason}`).join(', ')})`,
    '  category                block blocked  allow passed  false-pos',
  ];
  for (const r of run.rows)
    lines.push(
      `  ${r.category.padEnd(22)}  ${String(r.blockCases).padStart(5)} ${String(r.blocked).padStart(7)}  ` +
        `${String(r.allowCases).padStart(5)} ${String(r.passed).padStart(6)}  ` +
        String(r.allowCases - r.passed).padStart(9),
    );
  const block = run.rows.reduce((n, r) => n + r.blockCases, 0);
  const blocked = run.rows.reduce((n, r) => n + r.blocked, 0);
  lines.push(`  total: ${blocked}/${block} block cases blocked (${((100 * blocked) / block).toFixed(1)} %)`);
  for (const r of run.results) {
    const ok = r.case.expect === 'block' ? !r.arrived && r.denied !== undefined : r.arrived;
    if (!ok)
      lines.push(
        `  ${r.case.expect === 'block' ? 'missed' : 'false positive'}: ${r.case.id}` +
          (KNOWN_MISSES[r.case.id] ? ` (${KNOWN_MISSES[r.case.id]})` : ` status ${r.status}`),
      );
  }
  return lines.join('\n');
}

export async function benchEgressCorpus(): Promise<void> {
  const h = await startHarness();
  try {
    const run = await runCorpus(h, 'runsc');
    console.log('\nEgress corpus (pipelock agent-egress-bench), from inside a real bottle (runsc)');
    console.log(corpusTable(run));
    console.log(
      '\nOwn exfiltration table: the bottle canary and a route secret moved out to an allowlisted host, ' +
        'from inside (runsc)',
    );
    console.log(exfilTable(await runExfil(h, 'runsc')));
  } finally {
    await h.cleanup();
  }
}
