import { chooseHost } from '../host-runtime.js';
import { loadManifest } from '../../manifest/load.js';
import { formatPlanText } from '../../plan/format-text.js';
import { resolvePlan } from '../../plan/resolve.js';
import { gatherPlanFacts, type GatherOptions } from '../plan-facts.js';
import { refuseUnsafeWorkdir } from '../workdir-guard.js';

export interface DryRunOptions {
  manifestPath?: string;
  agent: string;
  cwd?: string;
  copyCwd: boolean;
  format: 'text' | 'json';
  args: string[];
  host?: string;
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
  const loaded = await loadManifest({ path: opts.manifestPath });
  const cwd = opts.cwd ?? process.cwd();
  // What a real start would refuse, a dry run refuses too: it shows what would happen.
  refuseUnsafeWorkdir(cwd, loaded);
  const unplannable: string[] = [];
  const facts = await gatherPlanFacts({
    loaded,
    agent: opts.agent,
    cwd,
    // A dry run opens no Redis, so reads no heartbeat: the host asked for, or this one, with the local runtime.
    ...(await chooseHost(undefined, opts.host).then((h) => ({ host: h.id, runtime: h.runtime }))),
    ...sources,
    dryRun: {
      onUnplannable: (image, reason) => unplannable.push(`note: the ${image} image can't be planned yet: ${reason}`),
    },
  });
  const plan = resolvePlan({ loaded, agent: opts.agent, copyCwd: opts.copyCwd, args: opts.args, facts });
  io.stdout(opts.format === 'json' ? `${JSON.stringify(plan, null, 2)}\n` : formatPlanText(plan));
  for (const note of unplannable) io.stderr(note);
  return 0;
}
