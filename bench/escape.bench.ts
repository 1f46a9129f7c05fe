// `npm run bench escape`: runs the escape suite (test/integration/escape-suite.test.ts)
// against real bottles under every runtime it covers and prints what it tried:
// attempts, refused, recorded as events, leaked (must be 0). The suite writes one
// row per attempt to ESCAPE_TABLE_FILE; this script only runs it and tabulates.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../test/support/cli-harness.js';

export interface EscapeRow {
  runtime: string;
  /** Issue 12's finding number, issue 21's ("21.3"), or "base" for what the suite covered before it. */
  finding: string;
  attempt: string;
  refused: boolean;
  /**
   * null: nothing exists to record it (refused below the gateway, at the network level, or on the
   * host before any bottle); false: refused but not in the event log (the note says why).
   */
  recorded: boolean | null;
  leaked: boolean;
  /** Why a refusal is not recorded, or where a case is tested beyond this suite. */
  note?: string;
}

/** Issue 12's findings; those without a row yet are listed under the table so the gap is visible. */
export const ISSUE_12_FINDINGS: Record<string, string> = {
  '1': 'working folder holding the tool home or secrets',
  '2': 'build contexts following symlinks',
  '3': 'terminal escapes in bottle strings',
  '4': 'agent run by name instead of uid',
  '5': 'capability endpoint flood',
  '6': 'credential port on every interface',
  '7': 'plain-HTTP route requests skipping the path check',
  '8': 'TRACE/TRACK reflecting the secret',
  '9': '"..;" segments',
  '10': 'interception CA unconstrained for IP addresses',
  '11': 'NAT64, 6to4 and site-local IPv6 answers',
  '12': 'no default resource limits',
  '13': 'secrets left on disk after a failed launch',
  '14': 'tunnels without a matching TLS name or Host',
  '15': 'exfiltration-friendly default hosts',
  '16': 'network-level attempts leaving no event',
};

/** Issue 21's findings (the security audit of round 3): each has a row here, named so in the table's summary. */
export const ISSUE_21_FINDINGS: Record<string, string> = {
  '21.1': 'the agent rewriting the installed tool (working folder guard)',
  '21.2': 'a swapped host key in Redis',
  '21.3': 'a Dockerfile RUN connecting directly or fetching unrecorded (builds behind the build gateway)',
  '21.4': 'twenty direct connects in 100 ms, all recorded',
  '21.5': 'a 1 GiB transcript file skipped and recorded',
  '21.6': 'docker kill of the network watch ends the bottle preserved, with an event',
  '21.7': 'zero-width, bidi and tag characters in a reason shown escaped',
  '21.8': 'limits.pids 256 under runsc: 100 processes run, a fork bomb stops at the limit',
};

export function escapeTable(rows: readonly EscapeRow[]): string {
  const lines: string[] = [];
  const yesNo = (value: boolean | null) => (value === null ? 'n/a' : value ? 'yes' : 'NO');
  const table = [
    ['runtime', 'finding', 'attempt', 'refused', 'event', 'leaked', 'note'],
    ...rows.map((r) => [
      r.runtime,
      r.finding,
      r.attempt,
      yesNo(r.refused),
      yesNo(r.recorded),
      r.leaked ? 'LEAKED' : 'no',
      r.note ?? '',
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table)
    lines.push(
      '  ' +
        row
          .map((cell, i) => cell.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
    );
  lines.push('');
  for (const runtime of [...new Set(rows.map((r) => r.runtime))]) {
    const mine = rows.filter((r) => r.runtime === runtime);
    const eventful = mine.filter((r) => r.recorded !== null);
    const unrecorded = eventful.filter((r) => !r.recorded).length;
    lines.push(
      `  ${runtime}: attempts tried ${mine.length}, refused ${mine.filter((r) => r.refused).length}, ` +
        `recorded as events ${eventful.length - unrecorded} of ${eventful.length} that reach a recorder` +
        (unrecorded > 0 ? ` (${unrecorded} not recorded: see the notes)` : '') +
        `, leaked ${mine.filter((r) => r.leaked).length} (must be 0)`,
    );
  }
  const covered = new Set(rows.map((r) => r.finding));
  const missing = Object.entries(ISSUE_12_FINDINGS).filter(([n]) => !covered.has(n));
  if (missing.length > 0)
    lines.push(`  issue 12 findings with no case here yet: ${missing.map(([n, what]) => `${n} (${what})`).join('; ')}`);
  else lines.push(`  every issue 12 finding (1-${Object.keys(ISSUE_12_FINDINGS).length}) has at least one case`);
  for (const [finding, what] of Object.entries(ISSUE_21_FINDINGS)) {
    const mine = rows.filter((r) => r.finding === finding);
    const where = [...new Set(mine.map((r) => r.runtime))].join(', ');
    lines.push(`  ${finding} ${what}: ${mine.length > 0 ? `${mine.length} row(s) (${where})` : 'NO ROW YET'}`);
  }
  return lines.join('\n');
}

/** Runs the suite (its progress goes to stderr) and prints the table on stdout. */
export async function benchEscape(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'cb-escape-'));
  const tableFile = join(dir, 'rows.json');
  try {
    const code = await new Promise<number>((resolve) => {
      const child = spawn('npx', ['vitest', 'run', 'test/integration/escape-suite.test.ts'], {
        cwd: REPO,
        env: {
          ...process.env,
          ESCAPE_TABLE_FILE: tableFile,
          REDIS_URL_TEST: process.env.REDIS_URL_TEST ?? 'redis://127.0.0.1:6379',
        },
        stdio: ['ignore', process.stderr, process.stderr],
      });
      child.on('close', (exitCode) => resolve(exitCode ?? 1));
    });
    const rows = existsSync(tableFile) ? (JSON.parse(readFileSync(tableFile, 'utf8')) as EscapeRow[]) : [];
    console.log('\nEscape suite (issues 12 and 21): attempts from inside real bottles, their builds and the host');
    console.log(rows.length > 0 ? escapeTable(rows) : '  the suite recorded no attempts (see its output above)');
    if (code !== 0) console.log(`  the escape suite failed (vitest exit ${code}): see its output above`);
    return code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
