import type { Command } from 'commander';
import { RuntimeFailure } from '../../shared/errors.js';
import { formatBytes } from '../../shared/format-bytes.js';
import { liveWorkers } from '../../engine/workers.js';
import { CleanupReportSchema, type CleanupReport } from '../../engine/host-tasks.js';
import type { CliIO } from '../../shared/io.js';
import { openSession } from '../session.js';
import { discardOlderThan, parseDuration } from '../discard-older.js';
import type { CliContext } from '../program.js';

/** Long enough for a host with many leftovers; a worker that never answers is reported, not waited on forever. */
const CLEANUP_TIMEOUT_MS = 10 * 60_000;

export interface CleanupOptions {
  dryRun: boolean;
  /** Also discard preserved and failed bottles at rest for longer than this (e.g. `7d`, `12h`). */
  discardOlderThan?: string;
  yes?: boolean;
  /** Only this Docker host; every host a live worker serves otherwise. */
  host?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('cleanup')
    .description('remove orphaned Docker resources and stale state')
    .option('--dry-run', 'only list what would be removed', false)
    .option('--host <id>', 'only on this Docker host (default: every host a live worker serves)')
    .option(
      '--discard-older-than <duration>',
      'also discard preserved and failed bottles at rest for longer than this (e.g. 7d, 12h, 30m)',
    )
    .option('-y, --yes', 'discard without asking (required without a terminal)', false)
    .action((flags: CleanupOptions) => cli.run(() => runCleanup(flags, cli.io)));
}

/**
 * `bottle cleanup [--dry-run] [--host ID]`: on each live host (or the one
 * named), the worker that owns its Docker daemon and state folder finds and
 * removes what no live bottle uses (see src/effects/cleanup.ts); the CLI only
 * asks and prints the answers.
 */
export async function runCleanup(opts: CleanupOptions, io: CliIO): Promise<number> {
  const olderThanMs = opts.discardOlderThan === undefined ? undefined : parseDuration(opts.discardOlderThan);
  const session = await openSession({ needWorker: true, say: (l) => io.stderr(l) });
  const failed: string[] = [];
  try {
    if (olderThanMs !== undefined) {
      const discarded = await discardOlderThan(session, { ...opts, olderThanMs, label: opts.discardOlderThan! }, io);
      if (discarded !== 0) failed.push('some bottles could not be discarded (see above)');
    }
    const live = [...new Set((await liveWorkers(session.redis)).map((w) => w.hostId))].sort();
    if (opts.host !== undefined && !live.includes(opts.host)) {
      throw new RuntimeFailure(`no live worker serves host ${opts.host}; \`bottle hosts\` lists the live ones`);
    }
    const hosts = opts.host !== undefined ? [opts.host] : live;
    for (const host of hosts) {
      let report: CleanupReport;
      try {
        const task = { task: 'cleanup', dry_run: opts.dryRun } as const;
        report = CleanupReportSchema.parse(await session.runHostTask(task, host, CLEANUP_TIMEOUT_MS));
      } catch (err) {
        failed.push(`cleanup did not complete on host ${host}: ${(err as Error).message}`);
        continue;
      }
      // One host reads as before; several are told apart.
      if (hosts.length > 1) io.stdout(`host ${host}:`);
      printReport(report, hosts.length > 1 ? (line) => io.stdout(`  ${line}`) : (line) => io.stdout(line));
    }
  } finally {
    await session.close();
  }
  if (failed.length > 0) throw new RuntimeFailure(failed.join('; '));
  return 0;
}

function printReport(report: CleanupReport, say: (line: string) => void): void {
  const lines = [
    ...report.containers.map((c) => `container ${c.name}`),
    ...report.networks.map(
      (n) => `network ${n.name}${n.why === 'earlier-version' ? ' (made by an earlier version)' : ''}`,
    ),
    ...report.state.map((dir) => `state ${dir}`),
    ...report.images.map((i) => `image ${i.tag} (${formatBytes(i.bytes)})`),
  ];
  for (const skipped of report.images_skipped) say(`kept image ${skipped.tag}: ${skipped.reason}`);
  if (lines.length === 0) {
    say('nothing to clean up');
    return;
  }
  for (const line of lines) say(`${report.dry_run ? 'would remove' : 'removed'} ${line}`);
  if (report.images.length > 0) {
    const total = report.images.reduce((sum, i) => sum + i.bytes, 0);
    say(report.dry_run ? `would free at least ${formatBytes(total)}` : `freed ${formatBytes(report.freed_bytes)}`);
  }
}
