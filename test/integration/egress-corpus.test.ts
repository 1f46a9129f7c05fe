import { afterAll, beforeAll, expect, it } from 'vitest';
import { corpusTable, exfilTable, runCorpus, type CorpusRun } from '../../bench/egress-corpus.bench.js';
import { exfilBlocked, runExfil } from '../../bench/exfil-table.js';
import { KNOWN_MISSES, refusedByAllowlist } from '../../bench/egress-corpus-data.js';
import { startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * pipelock's agent-egress-bench corpus (bench/data/agent-egress-bench.json) from inside one real
 * bottle under runsc: every case's name is pinned to a server this test owns on this host and allowed,
 * so only inspection can stop it (SSRF literals and a blocklisted domain are on no allowlist and are
 * refused without a connection). Per category, at least 95 % of the block cases are blocked, each with
 * a recorded decision, and no allow case is refused; the only misses are the documented ones.
 */
let h: BottleHarness;
let run: CorpusRun;

beforeAll(async () => {
  h = await startHarness();
  run = await runCorpus(h, 'runsc');
  console.log(corpusTable(run));
}, 240_000);

afterAll(async () => {
  await h?.cleanup();
});

it('blocks at least 95 % of each category block cases, recorded, and refuses no allow case', () => {
  for (const row of run.rows) {
    expect({ category: row.category, falsePositives: row.allowCases - row.passed }).toEqual({
      category: row.category,
      falsePositives: 0,
    });
    const missed = run.results.filter(
      (r) => r.case.category === row.category && r.case.expect === 'block' && (r.arrived || !r.denied),
    );
    expect(missed.map((r) => r.case.id).filter((id) => !(id in KNOWN_MISSES))).toEqual([]);
  }
  const block = run.rows.reduce((n, r) => n + r.blockCases, 0);
  const blocked = run.rows.reduce((n, r) => n + r.blocked, 0);
  expect(blocked / block).toBeGreaterThanOrEqual(0.95);
});

it('records every inspection refusal by class, rule, place and fingerprint, never the value', () => {
  const inspected = run.results.filter((x) => x.denied && !refusedByAllowlist(x.case) && !x.arrived);
  expect(inspected.length).toBeGreaterThan(40);
  for (const r of inspected) {
    expect(r.denied, r.case.id).toMatchObject({ class: expect.any(String), rule: expect.any(String) });
    expect(r.denied?.where, r.case.id).toMatch(/^(url|header|body|hostname|frame)$/);
  }
  const logged = JSON.stringify(run.results.map((r) => r.denied));
  expect(logged).not.toContain('AKIAIOSFODNN7EXAMPLE');
  expect(logged).not.toContain('ghp_ABCDEFGHIJ');
});

it('blocks and records every way of the own exfiltration table marked blocked', async () => {
  const results = await runExfil(h, 'runsc');
  console.log(exfilTable(results));
  expect(results.length).toBeGreaterThanOrEqual(40);
  const wrong = results
    .filter(({ row, result }) => (row.expect === 'blocked') !== exfilBlocked(row, result))
    .map(({ row, result }) => `${row.way}: ${result.arrived ? 'arrived' : 'not arrived'}, status ${result.status}`);
  expect(wrong).toEqual([]);
  // Recorded by class, rule, place and keyed fingerprint; a canary also raises the alarm.
  for (const { row, result } of results.filter((r) => r.row.expect === 'blocked' && !r.row.refusedWith)) {
    expect(result.denied, row.way).toMatchObject({ class: expect.any(String), rule: expect.any(String) });
    if (result.denied?.reason === 'canary') expect(result.denied.fingerprint, row.way).toMatch(/^canary:[0-9a-f]{12}$/);
    // A route's secret is one the gateway holds: found as that, whatever its shape.
    if (row.secret === 'route secret')
      expect(result.denied, row.way).toMatchObject({
        reason: 'known_secret',
        fingerprint: /^known_secret:[0-9a-f]{12}$/,
      });
  }
  expect(results.filter((r) => r.row.secret === 'route secret').length).toBeGreaterThanOrEqual(10);
  expect(results.some((r) => r.result.alarm)).toBe(true);
}, 240_000);
