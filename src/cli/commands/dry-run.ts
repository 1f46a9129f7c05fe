import { hostRuntime } from '../host-runtime.js';
import { loadManifest } from '../../manifest/load.js';
import { formatPlanText } from '../../plan/format-text.js';
import { resolvePlan } from '../../plan/resolve.js';

export interface DryRunOptions {
  manifestPath?: string;
  agent: string;
  cwd?: string;
  copyCwd: boolean;
  format: 'text' | 'json';
  args: string[];
}

/**
 * `bottle start --dry-run`: resolve and print the launch plan. It asks the
 * daemon only read-only questions (runtime), creates no Docker resource and
 * writes no state. The identity shown is a sample: a real start mints its own.
 */
export async function runDryRun(opts: DryRunOptions, io: { stdout: (s: string) => void }): Promise<number> {
  const loaded = await loadManifest({ path: opts.manifestPath });
  const plan = await resolvePlan({
    loaded,
    agent: opts.agent,
    cwd: opts.cwd ?? process.cwd(),
    copyCwd: opts.copyCwd,
    args: opts.args,
    runtime: await hostRuntime(),
  });
  io.stdout(opts.format === 'json' ? `${JSON.stringify(plan, null, 2)}\n` : formatPlanText(plan));
  return 0;
}
