import { basename } from 'node:path';
import { hostRuntime } from '../host-runtime.js';
import { accepts, bottleStatus } from '../../machines/index.js';
import { currentState } from '../../engine/bottle-log.js';
import { findAgent, loadManifest, MANIFEST_ENV, type LoadedManifest } from '../../manifest/load.js';
import { resolvePlan } from '../../plan/resolve.js';
import { gatherPlanFacts } from '../plan-facts.js';
import { resumeFactsFromLog } from '../resume-facts.js';
import { RuntimeFailure } from '../../shared/errors.js';
import { parseIdentity } from '../../shared/identity.js';
import { confirmLaunch, requireConfirmable } from '../confirm.js';
import type { CliIO } from '../../shared/io.js';
import { refuseUnsafeWorkdir } from '../workdir-guard.js';
import { resolveSecrets, sealForHost } from '../secrets.js';
import { openSession } from '../session.js';
import { cwdIsOnOtherHost, launchAndAttach, routeSources } from './start.js';
import { uploadPlanSources } from '../../blobs/upload.js';

/** The flag that continues the agent's most recent session (Claude Code: `--continue`); other commands get none. */
export function continueArgs(command: readonly string[], args: readonly string[]): string[] {
  return command.length > 0 && basename(command[0]) === 'claude' ? ['--continue', ...args] : [...args];
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
export async function runResume(
  opts: { identity: string; manifestPath?: string; detach: boolean; args: string[]; yes?: boolean },
  io: CliIO,
): Promise<number> {
  const { identity, agent: agentName } = parseIdentity(opts.identity);
  requireConfirmable(opts.yes ?? false, io, 'resume');
  // An explicitly chosen manifest (--manifest or $CLAUDE_BOTTLE_MANIFEST) is checked before the log is read.
  const explicitManifest = opts.manifestPath ?? process.env[MANIFEST_ENV];
  let loaded = explicitManifest ? await loadManifest({ path: explicitManifest }) : undefined;
  if (loaded) checkAgentKnown(identity, loaded);

  // The lifecycle check needs only the log; a worker is started once the resume is known to be possible.
  const session = await openSession({ needWorker: false, say: (l) => io.stderr(l) });
  try {
    const saved = resumeFactsFromLog(identity, await session.log.read(identity));
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
    const logged = saved.plan;
    if (!logged || !accepts(saved.state, { type: 'bottle.resume_requested', data: { plan: logged } })) {
      throw new RuntimeFailure(
        `${identity} is ${bottleStatus(saved.state)}; only preserved or failed bottles can be resumed`,
      );
    }
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
    const { agent } = findAgent(loaded, logged.agent);
    refuseUnsafeWorkdir(logged.cwd, loaded);
    const facts = await gatherPlanFacts({
      loaded,
      agent: logged.agent,
      cwd: logged.cwd,
      // A resume runs on the host that holds the bottle's state, with the runtime its worker says it has.
      host: logged.host,
      runtime: await hostRuntime(session.redis, logged.host, logged.runtime),
      cwdOnOtherHost: await cwdIsOnOtherHost(session, {
        cwd: logged.cwd,
        copies: logged.copy_cwd,
        host: logged.host,
      }),
      ...(saved.approvedDockerfile !== undefined
        ? { approvedDockerfile: { text: saved.approvedDockerfile, base: saved.baseDockerfile } }
        : {}),
      restoresTranscript: saved.transcriptSnapshotted,
    });
    const plan = resolvePlan({
      loaded,
      agent: logged.agent,
      copyCwd: logged.copy_cwd,
      identity,
      args: continueArgs(agent.command, opts.args),
      facts,
    });
    // Hosts approved through a capability request join the allowlist on resume.
    plan.hosts = [...new Set([...plan.hosts, ...saved.approvedEgress])].sort();
    const secrets = await resolveSecrets(plan, routeSources(loaded, plan));

    // The log may have moved on while the plan was resolved.
    const { state: live } = await currentState(session.log, identity);
    const command = { type: 'bottle.resume_requested', data: { plan } } as const;
    if (!accepts(live, command)) {
      throw new RuntimeFailure(`${identity} is ${bottleStatus(live)}; only preserved or failed bottles can be resumed`);
    }
    if (!(await confirmLaunch(plan, opts.yes ?? false, io))) return 1;
    await session.ensureWorker((l) => io.stderr(l));
    const afterSeq = await session.log.lastSeq(identity);
    plan.uploads = await uploadPlanSources(session.redis, plan, {
      say: (l) => io.stderr(l),
      baseDockerfile: saved.approvedDockerfile !== undefined ? saved.baseDockerfile : undefined,
    });
    await session.enqueueCommand(identity, command, await sealForHost(session.redis, plan, secrets));
    if (opts.detach) io.stdout(identity);
    else io.stderr(`bottle ${identity}: resuming`);
    return await launchAndAttach(session, plan, opts.detach, io, afterSeq);
  } finally {
    await session.close();
  }
}
