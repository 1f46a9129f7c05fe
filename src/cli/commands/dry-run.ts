import { formatPlanText } from '../../plan/format-text.js';
import { parseBudgetOption } from '../budget-option.js';
import { planLaunch } from '../launch.js';
import { publishedPorts } from '../publish-option.js';
import type { GatherOptions } from '../plan-facts.js';

export interface DryRunOptions {
  manifestPath?: string;
  agent: string;
  cwd?: string;
  copyCwd: boolean;
  format: 'text' | 'json';
  args: string[];
  host?: string;
  budget?: string;
  publish?: string[];
  remoteControl?: boolean;
}

/**
 * `bottle start --dry-run`: resolve and print the launch plan. It asks the
 * daemon only read-only questions (runtime), creates no Docker resource and
 * writes nothing (not even the digest cache). The identity shown is a sample: a real start mints its own.
 */
export async function runDryRun(
  opts: DryRunOptions,
  io: { stdout: (s: string) => void; stderr: (s: string) => void },
  sources: Pick<GatherOptions, 'gatewaySource'> = {},
): Promise<number> {
  const unplannable: string[] = [];
  const { plan } = await planLaunch({
    manifest: { path: opts.manifestPath },
    agent: opts.agent,
    cwd: opts.cwd ?? process.cwd(),
    copyCwd: opts.copyCwd,
    args: opts.args,
    budget: parseBudgetOption(opts.budget),
    publish: publishedPorts(opts.publish),
    remoteControl: opts.remoteControl,
    host: { kind: 'local', requested: opts.host },
    ...sources,
    dryRun: {
      onUnplannable: (image, reason) => unplannable.push(`note: the ${image} image can't be planned yet: ${reason}`),
    },
  });
  io.stdout(opts.format === 'json' ? `${JSON.stringify(plan, null, 2)}\n` : formatPlanText(plan));
  for (const note of unplannable) io.stderr(note);
  return 0;
}
