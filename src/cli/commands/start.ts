import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { chooseHost } from '../host-runtime.js';
import type { LifecycleEvent } from '../../events/schema.js';
import { accepts, foldEvents, stateName } from '../../machines/index.js';
import { currentState } from '../../engine/bottle-log.js';
import { findAgent, loadManifest } from '../../manifest/load.js';
import { resolvePlan } from '../../plan/resolve.js';
import { gatherPlanFacts } from '../plan-facts.js';
import type { BottlePlan } from '../../plan/schema.js';
import { UsageError } from '../../shared/errors.js';
import { trace } from '../../shared/trace.js';
import { connectRedis } from '../../engine/redis.js';
import { attachTerminal, onTerminal, streamOutput } from '../attach.js';
import { elsewhere, reachesBottleDocker } from '../bottle-docker.js';
import { confirmLaunch, requireConfirmable } from '../confirm.js';
import { followBuildProgress, type BuildProgressDisplay } from '../build-progress.js';
import { whileWatchingHost } from '../host-watch.js';
import type { CliIO } from '../../shared/io.js';
import { describeEvent } from '../render-event.js';
import { refuseUnsafeWorkdir } from '../workdir-guard.js';
import { resolveSecrets, sealForHost, type RouteSecretSource } from '../secrets.js';
import { loadQueueModule, openSession, type Session } from '../session.js';
import { runDryRun } from './dry-run.js';
import { uploadPlanSources } from '../../blobs/upload.js';

export interface StartOptions {
  agent: string;
  manifestPath?: string;
  cwd?: string;
  copyCwd: boolean;
  detach: boolean;
  dryRun: boolean;
  format: 'text' | 'json';
  args: string[];
  /** The Docker host to pin the bottle to (see chooseHost). */
  host?: string;
  yes?: boolean;
}

export async function runStart(opts: StartOptions, io: CliIO): Promise<number> {
  if (opts.format === 'json' && !opts.dryRun) {
    throw new UsageError(
      '--format json is only for --dry-run (a live start attaches a terminal); ' +
        'use `bottle events --format json` to follow a bottle as JSON',
    );
  }
  if (opts.dryRun) {
    return runDryRun(
      {
        manifestPath: opts.manifestPath,
        agent: opts.agent,
        cwd: opts.cwd,
        host: opts.host,
        copyCwd: opts.copyCwd,
        format: opts.format,
        args: opts.args,
      },
      io,
    );
  }
  requireConfirmable(opts.yes ?? false, io, 'start');
  trace('start: command loaded');
  // Loads BullMQ once the request is on its way, so the two overlap (spawn to first event:
  // median ~164 ms with this, ~176 without, over 3x11 interleaved starts each).
  setImmediate(() => void loadQueueModule().catch(() => undefined));
  const loaded = await loadManifest({ path: opts.manifestPath });
  findAgent(loaded, opts.agent);
  refuseUnsafeWorkdir(opts.cwd ?? process.cwd(), loaded);
  trace('start: manifest loaded');
  const session = await openSession({ needWorker: true, say: (l) => io.stderr(l) });
  trace('start: session open');
  try {
    const { id: host, runtime } = await chooseHost(session.redis, opts.host);
    const cwd = opts.cwd ?? process.cwd();
    const cwdOnOtherHost = await cwdIsOnOtherHost(session, {
      cwd,
      copies: opts.copyCwd || findAgent(loaded, opts.agent).agent.copy_cwd,
      host,
    });
    const facts = await gatherPlanFacts({ loaded, agent: opts.agent, cwd, runtime, host, cwdOnOtherHost });
    const plan = resolvePlan({ loaded, agent: opts.agent, copyCwd: opts.copyCwd, args: opts.args, facts });
    const secrets = await resolveSecrets(plan, routeSources(loaded, plan));
    trace('start: plan resolved');
    if (!(await confirmLaunch(plan, opts.yes ?? false, io))) return 1;
    plan.uploads = await uploadPlanSources(session.redis, plan, { say: (l) => io.stderr(l) });
    const request = { type: 'bottle.start_requested', data: { plan } } as const;
    await session.enqueueCommand(plan.identity, request, await sealForHost(session.redis, plan, secrets));
    trace('start: enqueued');
    if (opts.detach) io.stdout(plan.identity);
    else io.stderr(`bottle ${plan.identity}: starting`);
    return await launchAndAttach(session, plan, opts.detach, io, 0);
  } finally {
    await session.close();
  }
}

/**
 * A bind-mounted working folder missing here may be a path on the bottle's
 * host, when that is another machine's Docker: its daemon checks it there.
 */
export async function cwdIsOnOtherHost(
  session: Session,
  opts: { cwd: string; copies: boolean; host: string },
): Promise<boolean> {
  if (opts.copies || existsSync(resolve(opts.cwd))) return false;
  return !(await reachesBottleDocker(session.redis, opts.host));
}

/** The manifest routes, in plan order, for secret resolution (the plan names secret sources, never their values). */
export function routeSources(loaded: Awaited<ReturnType<typeof loadManifest>>, plan: BottlePlan): RouteSecretSource[] {
  const bottle = (
    loaded.manifest.bottles as Array<{ name: string; cred_proxy?: { routes: RouteSecretSource[] } }>
  ).find((b) => b.name === plan.bottle);
  return bottle?.cred_proxy?.routes ?? [];
}

/**
 * Shared by start and resume: follow the bottle until it runs (or fails),
 * then either return (detached) or attach the terminal, and afterwards follow
 * it to its end to report what the preservation matrix decided.
 */
export async function launchAndAttach(
  session: Session,
  plan: BottlePlan,
  detach: boolean,
  io: CliIO,
  afterSeq: number,
): Promise<number> {
  const identity = plan.identity;
  const progress = showBuildProgress(session, identity, io);
  let lastSeq = afterSeq;
  const onEvent = (ev: LifecycleEvent) => {
    lastSeq = ev.seq;
    trace(`event ${ev.seq} ${ev.type}`);
    if (ev.type.startsWith('egress.')) return;
    progress.pause();
    io.stderr(`  ${describeEvent(ev, identity)}`);
  };
  // Running is the machine's call (every launch region done), so the CLI folds what it follows.
  let state = (await currentState(session.log, identity)).state;
  const launched = (ev: LifecycleEvent) => {
    state = foldEvents(state, [ev]);
    return stateName(state) === 'running' || ['bottle.failed', 'bottle.preserved', 'bottle.cleaned'].includes(ev.type);
  };
  const say = (line: string) => {
    progress.pause();
    io.stderr(line);
  };
  // Asked while the launch runs, not after it: an attached start then waits for nothing more.
  const reachable = detach ? undefined : reachesBottleDocker(session.redis, plan.host).catch(() => true);
  const launchEnd = await session
    .follow(identity, afterSeq, onEvent, launched, { say, detach })
    .finally(() => progress.stop());
  if (!launchEnd || stateName(state) !== 'running') {
    io.stderr(`bottle ${identity} did not start; see: bottle events ${identity}`);
    if (accepts(state, { type: 'bottle.resume_requested', data: { plan } }))
      io.stderr(`resume it with: bottle resume ${identity}`);
    return 1;
  }
  if (detach) return 0;

  if (!(await reachable)) {
    io.stderr(`${elsewhere(identity, plan, 'attach')}; following its events until it ends`);
  } else if (io.isTTY) {
    const how = await whileWatchingHost(session, identity, onTerminal(io), () =>
      attachTerminal(plan.containers.agent, () => io.stderr(`attached to ${identity} (detach: Ctrl-P Ctrl-Q)`)),
    );
    if (how === 'detached') {
      io.stderr(`detached; the bottle keeps running. Re-attach with: bottle attach ${identity}`);
      return 0;
    }
  } else {
    await whileWatchingHost(session, identity, say, () => streamOutput(plan.containers.agent));
  }
  const end = await session.follow(
    identity,
    lastSeq,
    onEvent,
    (ev) => ['bottle.cleaned', 'bottle.preserved', 'bottle.failed'].includes(ev.type),
    { say: (l) => io.stderr(l) },
  );
  const exited = await session.log.read(identity, afterSeq + 1);
  const exit = [...exited].reverse().find((e) => e.type === 'agent.exited');
  const code = exit ? (exit.data as { code: number }).code : 1;
  if (end?.type === 'bottle.preserved') io.stderr(`state kept; resume with: bottle resume ${identity}`);
  return code;
}

/** Build progress on a terminal (see build-progress.ts); nothing without one. */
function showBuildProgress(session: Session, identity: string, io: CliIO): BuildProgressDisplay {
  if (!io.isTTY) return { pause: () => undefined, stop: () => undefined };
  return followBuildProgress(connectRedis(session.target), identity);
}
