/**
 * `CLAUDE_BOTTLE_TRACE=1`: one stderr line per milestone, with the time since
 * the process started, for finding where a slow command spends its time.
 */
export const tracing = Boolean(process.env.CLAUDE_BOTTLE_TRACE);

export function trace(label: string): void {
  if (tracing) process.stderr.write(`[trace ${performance.now().toFixed(0)} ms] ${label}\n`);
}
