import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Bottle } from '../manifest/schema.js';
import type { PlanFacts } from '../plan/resolve.js';
import type { ImagePlan } from '../plan/schema.js';
import { agentImageSource, gatewayImageSource, imagePlan, type ImageSource } from '../images/sources.js';
import { readUserClaudeFiles } from '../shared/claude-files.js';
import { UsageError } from '../shared/errors.js';
import type { ContainerRuntime } from '../shared/runtime.js';

export interface GatherOptions {
  /** The bottle the agent runs in, as the manifest defines it. */
  bottle: Bottle;
  cwd: string;
  runtime: ContainerRuntime;
  /** The host the bottle is pinned to. */
  host: string;
  /**
   * A resumed bottle whose capability change replaced its Dockerfile: the approved text (from the log) in
   * place of the original Dockerfile `base` (null: the built-in image's) in that original build context.
   */
  approvedDockerfile?: { text: string; base: string | null };
  /**
   * The working folder is bind-mounted on another machine's Docker (the bottle's host): it is a
   * path there, which that daemon checks, so it need not exist here.
   */
  cwdOnOtherHost?: boolean;
  /** A resumed bottle whose log records a transcript snapshot: its worker restores it. */
  restoresTranscript?: boolean;
  /**
   * A dry run writes nothing (no digest cache) and does not fail on an image
   * that cannot be planned yet: it reports why through `onUnplannable`.
   */
  dryRun?: { onUnplannable: (image: string, reason: string) => void };
  /** The gateway's build context; the installation's own unless a caller (a test) names another. */
  gatewaySource?: () => ImageSource;
}

/** The facts about this host that a plan is resolved from: everything here reads files, nothing writes. */
export async function gatherPlanFacts(opts: GatherOptions): Promise<PlanFacts> {
  const { bottle } = opts;
  const persist = !opts.dryRun;
  const plan = async (name: string, source: () => ImageSource): Promise<ImagePlan> => {
    try {
      return await imagePlan(source(), { persist });
    } catch (err) {
      if (!opts.dryRun) throw err;
      opts.dryRun.onUnplannable(name, (err as Error).message);
      return { tag: `claude-bottle/${name}:unplanned`, context_hash: '', dockerfile: `builtin:${name}`, builtin: true };
    }
  };
  const approved = opts.approvedDockerfile;
  const agentSource = () =>
    approved
      ? agentImageSource({
          dockerfile: approved.base ?? undefined,
          approvedDockerfile: approved.text,
          bottle: bottle.name,
        })
      : agentImageSource({ dockerfile: bottle.dockerfile, bottle: bottle.name });
  const [agent, gateway] = await Promise.all([
    plan('agent', agentSource),
    plan('gateway', opts.gatewaySource ?? gatewayImageSource),
  ]);
  return {
    runtime: opts.runtime,
    host: opts.host,
    cwd: opts.cwdOnOtherHost ? otherHostCwd(opts.cwd) : checkedCwd(opts.cwd),
    images: { agent, gateway },
    restoresTranscript: opts.restoresTranscript,
    userClaudeFiles: await readUserClaudeFiles(),
  };
}

function otherHostCwd(cwd: string): string {
  if (!isAbsolute(cwd)) {
    throw new UsageError(`working folder ${cwd} is on the bottle's host: give it as an absolute path there`);
  }
  return resolve(cwd);
}

function checkedCwd(cwd: string): string {
  const abs = resolve(cwd);
  const s = statSync(abs, { throwIfNoEntry: false });
  if (!s) throw new UsageError(`working folder ${abs} does not exist; pass an existing folder with --cwd`);
  if (!s.isDirectory()) throw new UsageError(`working folder ${abs} is not a folder; pass a folder with --cwd`);
  return abs;
}
