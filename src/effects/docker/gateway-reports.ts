import type Docker from 'dockerode';
import { GATEWAY_REPORT_SIGNAL, isReportedLine, parseReadyLine, type ReadyLine } from '../../gateway/protocol.js';
import { PermanentEffectError } from '../types.js';
import { demuxLogBuffer, ReadyTimeout, waitForReadyLine } from './logs.js';
import { isGone } from './remove-bottle.js';

/** How long the watcher waits for the gateway's `reported` line before draining what there is. */
export const REPORTS_WAIT_MS = 5000;

/**
 * What came of asking: the gateway wrote its reports; it was started before
 * it could be asked (the signal would end it); it is gone; or it did not
 * answer in time (the drain then takes what there is).
 */
export type ReportsOutcome = 'reported' | 'unsupported' | 'gone' | 'late';

/**
 * Asks a running gateway to write the traffic counters and token usage its
 * rate bounds hold back, and waits for its `reported` line. The agent's last
 * seconds of traffic and its last Messages API call are otherwise written
 * only when the gateway stops, after its log is no longer read.
 */
export async function askGatewayForReports(
  gateway: Docker.Container,
  timeoutMs: number = REPORTS_WAIT_MS,
): Promise<ReportsOutcome> {
  let lines: string[];
  try {
    lines = demuxLogBuffer(await gateway.logs({ follow: false, stdout: true, stderr: false })).stdout.split('\n');
  } catch (err) {
    if (isGone(err)) return 'gone';
    throw err;
  }
  // One pass: the ready line comes first, the `reported` lines of earlier asks after it.
  let ready: ReadyLine | undefined;
  let before = 0;
  for (const line of lines) {
    if (ready === undefined) ready = parseReadyLine(line);
    else if (isReportedLine(line)) before += 1;
  }
  if (!ready?.writes_reports) return 'unsupported';
  try {
    await gateway.kill({ signal: GATEWAY_REPORT_SIGNAL });
  } catch (err) {
    // 409: the container is not running.
    if (isGone(err)) return 'gone';
    throw err;
  }
  let seen = 0;
  try {
    await waitForReadyLine(gateway, "the gateway's reports", (line) => isReportedLine(line) && ++seen > before, {
      timeoutMs,
    });
    return 'reported';
  } catch (err) {
    if (err instanceof ReadyTimeout) return 'late';
    if (err instanceof PermanentEffectError || isGone(err)) return 'gone';
    throw err;
  }
}
