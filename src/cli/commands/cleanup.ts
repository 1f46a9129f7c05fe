import { RuntimeFailure } from '../../shared/errors.js';
import { formatBytes } from '../../shared/format-bytes.js';
import { CleanupReportSchema, type CleanupReport } from '../../worker/host-task.js';
import type { CliIO } from '../io.js';
import { openSession } from '../session.js';

/** Long enough for a host with many leftovers; a worker that never answers is reported, not waited on forever. */
const CLEANUP_TIMEOUT_MS = 10 * 60_000;

/**
 * `bottle cleanup [--dry-run]`: the worker that owns the Docker host and the
 * state folder finds and removes what no live bottle uses (see
 * src/effects/cleanup.ts); the CLI only asks and prints the answer.
 */
export async function runCleanup(opts: { dryRun: boolean }, io: CliIO): Promise<number> {
  const session = await openSession({ needWorker: true, say: (l) => io.stderr(l) });
  let report: CleanupReport;
  try {
    const answer = await session.runHostTask({ task: 'cleanup', dry_run: opts.dryRun }, CLEANUP_TIMEOUT_MS);
    report = CleanupReportSchema.parse(answer);
  } catch (err) {
    throw new RuntimeFailure(`cleanup did not complete on the worker: ${(err as Error).message}`);
  } finally {
    await session.close();
  }
  printReport(report, io);
  return 0;
}

function printReport(report: CleanupReport, io: CliIO): void {
  const lines = [
    ...report.containers.map((c) => `container ${c.name}`),
    ...report.networks.map(
      (n) => `network ${n.name}${n.why === 'earlier-version' ? ' (made by an earlier version)' : ''}`,
    ),
    ...report.state.map((dir) => `state ${dir}`),
    ...report.images.map((i) => `image ${i.tag} (${formatBytes(i.bytes)})`),
  ];
  for (const skipped of report.images_skipped) io.stdout(`kept image ${skipped.tag}: ${skipped.reason}`);
  if (lines.length === 0) {
    io.stdout('nothing to clean up');
    return;
  }
  for (const line of lines) io.stdout(`${report.dry_run ? 'would remove' : 'removed'} ${line}`);
  if (report.images.length > 0) {
    const total = report.images.reduce((sum, i) => sum + i.bytes, 0);
    io.stdout(
      report.dry_run ? `would free at least ${formatBytes(total)}` : `freed ${formatBytes(report.freed_bytes)}`,
    );
  }
}
