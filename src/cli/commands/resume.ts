import type { Command } from 'commander';
import { loadManifest, MANIFEST_ENV, type LoadedManifest } from '../../manifest/load.js';
import { RuntimeFailure } from '../../shared/errors.js';
import { parseIdentity } from '../../shared/identity.js';
import type { CliIO } from '../../shared/io.js';
import { requireConfirmable } from '../confirm.js';
import { checkedResume, launch, planLaunch } from '../launch.js';
import type { CliContext } from '../program.js';
import { resumeFactsFromLog } from '../resume-facts.js';
import { commandAndFollow, openSession, type Session } from '../session.js';
import { readOriginalFolder } from '../import-original.js';
import { statePaths } from '../../shared/paths.js';
import { existsSync } from 'node:fs';

export interface ResumeOptions {
  identity: string;
  manifestPath?: string;
  detach: boolean;
  args: string[];
  yes?: boolean;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('resume')
    .description('relaunch a preserved bottle with its Dockerfile and transcript; args follow --continue')
    .argument('<identity>')
    .argument('[args...]')
    .option('--detach', 'run headless', false)
    .option('-y, --yes', 'launch without showing the plan and asking (required without a terminal)', false)
    .action((identity: string, args: string[], flags: Pick<ResumeOptions, 'detach' | 'yes'>) =>
      cli.run(() => runResume({ ...flags, identity, args, manifestPath: cli.manifestPath() }, cli.io)),
    );
}

/** The identity's agent must be an agent of the manifest the bottle is resumed with: exit 2 otherwise. */
function checkAgentKnown(identity: string, loaded: LoadedManifest): void {
  parseIdentity(
    identity,
    loaded.manifest.agents.map((a) => a.name),
  );
}

/**
 * `bottle resume <identity>`. Order matters: everything that can refuse the
 * identity (its syntax, then its agent against an explicitly chosen
 * manifest) runs before Redis is touched or a worker is started. Unlike the
 * other identity commands (src/cli/identity-arg.ts), which accept any bottle
 * whose log exists, resume requires the agent in the manifest it relaunches
 * from. Everything it relaunches from comes from the bottle's event log
 * (src/cli/resume-facts.ts), never from the worker's state folder: the
 * bottle's worker may run on another machine.
 */
export async function runResume(opts: ResumeOptions, io: CliIO): Promise<number> {
  const { identity, agent: agentName } = parseIdentity(opts.identity);
  requireConfirmable(opts.yes ?? false, io, 'resume');
  // An explicitly chosen manifest (--manifest or $CLAUDE_BOTTLE_MANIFEST) is checked before the log is read.
  const explicitManifest = opts.manifestPath ?? process.env[MANIFEST_ENV];
  let loaded = explicitManifest ? await loadManifest({ path: explicitManifest }) : undefined;
  if (loaded) checkAgentKnown(identity, loaded);

  // The lifecycle check needs only the log; a worker is started once the resume is known to be possible.
  const session = await openSession({ needWorker: false, say: (l) => io.stderr(l) });
  try {
    let saved = resumeFactsFromLog(identity, await session.log.read(identity));
    // A folder the original tool preserved has no log: it is imported first, then resumed like any other.
    if (saved.state.seq === 0 && hasStateFolder(identity)) {
      await importOriginal(session, identity, io);
      saved = resumeFactsFromLog(identity, await session.log.read(identity));
    }
    if (saved.imported && saved.plan === null) {
      loaded ??= await loadManifest({});
      checkAgentKnown(identity, loaded);
      const { cwd, copy_cwd: copyCwd, host } = saved.imported;
      const planned = await planLaunch({
        manifest: { loaded },
        agent: agentName,
        cwd,
        copyCwd,
        args: opts.args,
        host: { kind: 'pinned', host, lastRuntime: 'runc', session },
        relaunch: { identity, saved },
      });
      return await launch(session, planned, { yes: opts.yes ?? false, detach: opts.detach }, io);
    }
    if (saved.state.seq === 0) {
      if (!loaded) {
        // No log to name a manifest: the default manifest decides whether the agent exists at all.
        const fallback = await loadManifest({}).catch(() => undefined);
        if (fallback) checkAgentKnown(identity, fallback);
      }
      throw new RuntimeFailure(
        `no saved state for ${identity}: this Redis has no event log for it (check REDIS_URL; ` +
          'only crashed, stopped, failed or capability-blocked bottles keep state)',
      );
    }
    const logged = checkedResume(identity, saved.state, saved.plan).data.plan;
    if (logged.agent !== agentName) {
      throw new RuntimeFailure(
        `the event log of ${identity} names agent ${JSON.stringify(logged.agent)}; ` +
          'refusing to resume it under another name',
      );
    }
    if (!loaded) {
      // Without an explicit choice, the bottle resumes from the manifest it was started with.
      loaded = await loadManifest({ path: logged.manifest_path });
      checkAgentKnown(identity, loaded);
    }
    // A budget given with `start --budget` stays with the bottle unless its manifest now sets one.
    const bottleBudget = loaded.manifest.bottles.find((b) => b.name === logged.bottle)?.limits.budget;
    const kept = saved.state.context.plan?.limits.budget;
    const planned = await planLaunch({
      manifest: { loaded },
      agent: logged.agent,
      cwd: logged.cwd,
      copyCwd: logged.copy_cwd,
      args: opts.args,
      ...(bottleBudget === undefined && kept ? { budget: { unit: kept.unit, amount: kept.limit } } : {}),
      host: { kind: 'pinned', host: logged.host, lastRuntime: logged.runtime, session },
      relaunch: { identity, saved },
    });
    return await launch(session, planned, { yes: opts.yes ?? false, detach: opts.detach }, io);
  } finally {
    await session.close();
  }
}

function hasStateFolder(identity: string): boolean {
  return existsSync(statePaths(identity).dir);
}

/** Appends `bottle.imported` (through the machine) with what the original's folder says; deletes nothing. */
async function importOriginal(session: Session, identity: string, io: CliIO): Promise<void> {
  const data = readOriginalFolder(identity);
  const end = await commandAndFollow(
    session,
    identity,
    { type: 'bottle.imported', data },
    () => undefined,
    (ev) => ev.type === 'bottle.imported',
    { say: (l) => io.stderr(l) },
  );
  if (end?.type !== 'bottle.imported') throw new RuntimeFailure(`${identity} could not be imported`);
  io.stderr(
    `imported ${identity} from the original claude-bottle's state folder (agent ${data.agent}, cwd ${data.cwd})`,
  );
}
