import type { LifecycleEvent } from '../events/schema.js';
import { accepts, foldEvents, stateName } from '../machines/index.js';
import { currentState } from '../engine/bottle-log.js';
import { connectRedis } from '../engine/redis.js';
import type { BottlePlan } from '../plan/schema.js';
import type { CliIO } from '../shared/io.js';
import { trace } from '../shared/trace.js';
import { attachTerminal, onTerminal, streamOutput } from './attach.js';
import { elsewhere, reachesBottleDocker } from './bottle-docker.js';
import { followBuildProgress, type BuildProgressDisplay } from './build-progress.js';
import { whileWatchingHost } from './host-watch.js';
import { describeEvent } from './render-event.js';
import type { Session } from './session.js';

/**
 * After a launch was sent (start or resume): follows the bottle until it runs
 * (or fails), then either returns (detached) or attaches the terminal, and
 * afterwards follows it to its end to report what the preservation matrix decided.
 */
export async function followAndAttach(
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
