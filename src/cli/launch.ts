import { basename } from 'node:path';
import type { BudgetUnit } from '../shared/budget.js';
import { priceTable } from './price-table.js';
import { uploadPlanSources } from '../blobs/upload.js';
import { accepts, bottleStatus, type BottleState, type Command } from '../machines/index.js';
import { currentState } from '../engine/bottle-log.js';
import { findAgent, loadManifest, type LoadedManifest } from '../manifest/load.js';
import { resolvePlan } from '../plan/resolve.js';
import { withApprovedGrants } from '../plan/egress-grants.js';
import type { BottlePlan } from '../plan/schema.js';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import type { PortSpec } from '../shared/port-spec.js';
import { REMOTE_CONTROL_REFUSAL } from '../plan/remote-control.js';
import { checkPortsFree } from './port-precheck.js';
import type { CliIO } from '../shared/io.js';
import { runtimeNote, type ContainerRuntime } from '../shared/runtime.js';
import { chooseBackend } from '../shared/backend.js';
import { trace } from '../shared/trace.js';
import { cwdIsOnOtherHost } from './bottle-docker.js';
import { confirmLaunch } from './confirm.js';
import { chooseHost, hostRuntime } from './host-runtime.js';
import { followAndAttach } from './launch-attach.js';
import { gatherPlanFacts, type GatherOptions } from './plan-facts.js';
import type { ResumeFacts } from './resume-facts.js';
import { checkHostKeyBeforeLaunch, resolveSecrets, sealForHost, type RouteSecretSource } from './secrets.js';
import type { Session } from './session.js';
import { refuseUnsafeWorkdir } from './workdir-guard.js';

/**
 * One launch path for `start`, `start --dry-run` and `resume`: planLaunch
 * resolves the plan (manifest, working-folder guard, host, facts, plan; each
 * once), launch carries it out (secrets, confirmation, uploads, sealed
 * secrets, the command, then following and attaching).
 */

/** Where the bottle is planned to run. */
export type HostChoice =
  /** A dry run opens no Redis, so reads no heartbeat: the host asked for, or this one, with the local runtime. */
  | { kind: 'local'; requested?: string }
  /** A start opens its session once the manifest and the folder passed, then chooses among live hosts. */
  | { kind: 'choose'; requested?: string; open: () => Promise<Session> }
  /** A resume runs on the host that holds the bottle's state, with the runtime its worker says it has. */
  | { kind: 'pinned'; host: string; lastRuntime: ContainerRuntime; session: Session };

export interface PlanRequest {
  /** Loaded from `path` (start, dry run), or the one resume chose and checked against the identity. */
  manifest: { path?: string } | { loaded: LoadedManifest };
  agent: string;
  cwd: string;
  /** `--copy-cwd`, or the bottle's last choice on resume; the agent's copy_cwd turns copying on too. */
  copyCwd: boolean;
  args: string[];
  host: HostChoice;
  /** `start --publish`: ports published besides the bottle's manifest ports. */
  publish?: PortSpec[];
  /** `start --remote-control`. */
  remoteControl?: boolean;
  /** A resume: the identity it keeps and what the bottle's event log says. */
  relaunch?: { identity: string; saved: ResumeFacts };
  dryRun?: GatherOptions['dryRun'];
  gatewaySource?: GatherOptions['gatewaySource'];
  /** `start --budget`. */
  budget?: { unit: BudgetUnit; amount: number };
}

export interface PlannedLaunch {
  plan: BottlePlan;
  /** The manifest routes, in plan order, for secret resolution (the plan names secret sources, never values). */
  routes: RouteSecretSource[];
  /** The session the plan was made in (opened for a start, given by a resume); none for a dry run. */
  session?: Session;
  relaunch?: PlanRequest['relaunch'];
}

function budgetUnitOf(budget: { tokens: number } | { usd: number } | undefined): BudgetUnit | undefined {
  return budget === undefined ? undefined : 'tokens' in budget ? 'tokens' : 'usd';
}

/** The flag that continues the agent's most recent session (Claude Code: `--continue`); other commands get none. */
export function continueArgs(command: readonly string[], args: readonly string[]): string[] {
  return command.length > 0 && basename(command[0]) === 'claude' ? ['--continue', ...args] : [...args];
}

/**
 * Resolves the plan of a launch, each step once: the manifest and its agent, the working-folder guard,
 * the host, the facts about it, the plan. A session it opens (a start's) is closed again if planning fails.
 */
export async function planLaunch(req: PlanRequest): Promise<PlannedLaunch> {
  const backend = chooseBackend();
  const loaded = 'loaded' in req.manifest ? req.manifest.loaded : await loadManifest({ path: req.manifest.path });
  const { agent, bottle } = findAgent(loaded, req.agent);
  // Refused before anything is created; a dry run refuses it too, as it shows what a start would do.
  refuseUnsafeWorkdir(req.cwd, loaded);
  trace('launch: manifest loaded');
  const where = req.host;
  const session = where.kind === 'choose' ? await where.open() : where.kind === 'pinned' ? where.session : undefined;
  if (session) trace('launch: session open');
  try {
    const host =
      where.kind === 'pinned'
        ? { id: where.host, runtime: await hostRuntime(where.session.redis, where.host, where.lastRuntime) }
        : await chooseHost(session?.redis, where.requested);
    const copies = req.copyCwd || agent.copy_cwd;
    const saved = req.relaunch?.saved;
    const facts = await gatherPlanFacts({
      bottle,
      cwd: req.cwd,
      host: host.id,
      runtime: host.runtime,
      cwdOnOtherHost: session ? await cwdIsOnOtherHost(session.redis, { cwd: req.cwd, copies, host: host.id }) : false,
      ...(saved?.approvedDockerfile !== undefined
        ? { approvedDockerfile: { text: saved.approvedDockerfile, base: saved.baseDockerfile } }
        : {}),
      restoresTranscript: saved?.transcriptSnapshotted,
      dryRun: req.dryRun,
      gatewaySource: req.gatewaySource,
    });
    const plan = resolvePlan({
      manifestPath: loaded.path,
      agent,
      bottle,
      copyCwd: req.copyCwd,
      identity: req.relaunch?.identity,
      publish: req.publish,
      remoteControl: req.remoteControl,
      args: saved ? continueArgs(agent.command, req.args) : req.args,
      budget: req.budget,
      // USD budgets are counted at the prices of this start (the operator's price file included).
      prices: (req.budget?.unit ?? budgetUnitOf(bottle.limits.budget)) === 'usd' ? priceTable() : undefined,
      facts,
    });
    // Hosts approved through a capability request join the allowlist on resume.
    if (saved) plan.hosts = [...new Set([...plan.hosts, ...saved.approvedEgress])].sort();
    // Method/path grants too, on the entries they widened.
    if (saved?.approvedGrants.length)
      plan.egress_entries = withApprovedGrants(plan.egress_entries, saved.approvedGrants);
    plan.backend = backend;
    const note = runtimeNote(plan.runtime);
    if (note !== undefined) plan.runtime_note = note;
    return { plan, routes: bottle.cred_proxy.routes, session, relaunch: req.relaunch };
  } catch (err) {
    if (where.kind === 'choose') await session?.close();
    throw err;
  }
}

/** The resume command for a bottle in `state`, refused unless its machine would take it. */
export function checkedResume(
  identity: string,
  state: BottleState,
  plan: BottlePlan | null,
): Command<'bottle.resume_requested'> {
  const command = plan && ({ type: 'bottle.resume_requested', data: { plan } } as const);
  if (!command || !accepts(state, command)) {
    throw new RuntimeFailure(`${identity} is ${bottleStatus(state)}; only preserved or failed bottles can be resumed`);
  }
  return command;
}

/**
 * Launches a planned bottle in the session it was planned in, then follows it until it runs and
 * attaches (see followAndAttach); returns the exit code.
 */
export async function launch(
  session: Session,
  planned: PlannedLaunch,
  opts: { yes: boolean; detach: boolean },
  io: CliIO,
): Promise<number> {
  const { plan, relaunch } = planned;
  const identity = plan.identity;
  const say = (line: string) => io.stderr(line);
  // Refused before any secret is read: the agent would have to hold the operator's real token.
  if (plan.remote_control) throw new UsageError(REMOTE_CONTROL_REFUSAL);
  await checkPortsFree(session.redis, plan.host, plan.ports ?? []);
  const secrets = await resolveSecrets(plan, planned.routes);
  await checkHostKeyBeforeLaunch(session.redis, plan, secrets);
  trace('launch: plan resolved');
  // The log may have moved on while the plan was resolved.
  const command = relaunch
    ? checkedResume(identity, (await currentState(session.log, identity)).state, plan)
    : ({ type: 'bottle.start_requested', data: { plan } } as const);
  if (!(await confirmLaunch(plan, opts.yes, io))) return 1;
  // A start opened its session with a worker; a resume starts one once it is known to be possible.
  if (relaunch) await session.ensureWorker(say);
  const afterSeq = relaunch ? await session.log.lastSeq(identity) : 0;
  const saved = relaunch?.saved;
  plan.uploads = await uploadPlanSources(session.redis, plan, {
    say,
    baseDockerfile: saved?.approvedDockerfile !== undefined ? saved.baseDockerfile : undefined,
  });
  await session.enqueueCommand(identity, command, await sealForHost(session.redis, plan, secrets));
  trace('launch: enqueued');
  if (opts.detach) io.stdout(identity);
  else io.stderr(`bottle ${identity}: ${relaunch ? 'resuming' : 'starting'}`);
  return await followAndAttach(session, plan, opts.detach, io, afterSeq);
}
