import type { Command } from 'commander';
import type { LifecycleEvent } from '../../events/schema.js';
import { bottleStatus, stateName, type BottleState } from '../../machines/index.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import { resourceNames } from '../../shared/names.js';
import { currentState } from '../../engine/bottle-log.js';
import { attachTerminal, onTerminal } from '../attach.js';
import { reachesBottleDocker, refuseElsewhere } from '../bottle-docker.js';
import { checkIdentityArg } from '../identity-arg.js';
import { whileWatchingHost } from '../host-watch.js';
import type { CliIO } from '../../shared/io.js';
import { describeEvent } from '../render-event.js';
import { openSession, type Session } from '../session.js';
import type { CliContext } from '../program.js';

/** The bottle's agent container and its live state; a bottle unknown to this Redis is a runtime failure. */
export async function agentOf(
  session: Session,
  identity: string,
): Promise<{ container: string; state: BottleState; lastSeq: number }> {
  if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
  const { state, lastSeq } = await currentState(session.log, identity);
  return { container: state.context.plan?.containers.agent ?? resourceNames(identity).agentContainer, state, lastSeq };
}

/** What to tell the user about a bottle that is not running. */
export function notRunningHint(identity: string, state: BottleState): string {
  const name = stateName(state);
  if (name === 'preserved' || name === 'failed') return `; resume it with: bottle resume ${identity}`;
  if (name === 'cleaned' || name === 'discarded') return '';
  return `; follow it with: bottle events ${identity} --follow`;
}

export interface AttachOptions {
  identity: string;
  manifestPath?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('attach')
    .description("re-attach your terminal to a running bottle's agent (detach: Ctrl-P Ctrl-Q)")
    .argument('<identity>')
    .action((identity: string) => cli.run(() => runAttach({ identity, manifestPath: cli.manifestPath() }, cli.io)));
}

/**
 * `bottle attach <identity>`: the terminal of a running bottle again, after
 * Ctrl-P Ctrl-Q or from another terminal. When the agent exits while
 * attached, it reports what the preservation matrix decided, as start does,
 * and exits with the agent's code.
 */
export async function runAttach(opts: AttachOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  if (!io.isTTY) {
    throw new UsageError(`attach needs a terminal; without one, read the output: bottle logs ${identity} --follow`);
  }
  const session = await openSession({ needWorker: false });
  try {
    const { container, state, lastSeq } = await agentOf(session, identity);
    if (stateName(state) !== 'running') {
      const hint = notRunningHint(identity, state);
      throw new RuntimeFailure(`${identity} is ${bottleStatus(state)}; only a running bottle can be attached${hint}`);
    }
    const plan = state.context.plan;
    if (plan && !(await reachesBottleDocker(session.redis, plan.host))) refuseElsewhere(identity, plan, 'attach');
    const notice = () => io.stderr(`attached to ${identity} (detach: Ctrl-P Ctrl-Q)`);
    const how = await whileWatchingHost(session, identity, onTerminal(io), () =>
      attachTerminal(container, notice, { redraw: true }),
    );
    if (how === 'detached') {
      io.stderr(`detached; the bottle keeps running. Re-attach with: bottle attach ${identity}`);
      return 0;
    }
    const show = (ev: LifecycleEvent) => {
      if (!ev.type.startsWith('egress.')) io.stderr(`  ${describeEvent(ev, identity)}`);
    };
    const end = await session.follow(
      identity,
      lastSeq,
      show,
      (ev) => ['bottle.cleaned', 'bottle.preserved', 'bottle.failed'].includes(ev.type),
      { say: (l) => io.stderr(l) },
    );
    const exit = [...(await session.log.read(identity, lastSeq + 1))].reverse().find((e) => e.type === 'agent.exited');
    if (end?.type === 'bottle.preserved') io.stderr(`state kept; resume with: bottle resume ${identity}`);
    return exit ? (exit.data as { code: number }).code : 1;
  } finally {
    await session.close();
  }
}
