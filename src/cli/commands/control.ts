import type { Command } from 'commander';
import type { LifecycleEvent } from '../../events/schema.js';
import { accepts, bottleStatus } from '../../machines/index.js';
import { currentState } from '../../engine/bottle-log.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import { checkIdentityArg } from '../identity-arg.js';
import type { CliIO } from '../../shared/io.js';
import { capabilityTarget, egressAllowEntry, grantScopeText } from '../../shared/capability.js';
import { describeEvent } from '../render-event.js';
import { commandAndFollow, openSession } from '../session.js';
import { capabilityReview } from '../capability-review.js';
import { visibleText } from '../../shared/visible-text.js';
import { checkDecision, enqueueDecision, operator } from '../capability-decision.js';
import { askOnTerminal } from '../confirm.js';
import type { CliContext } from '../program.js';

export interface StopOptions {
  identity: string;
  manifestPath?: string;
}

export interface DecideOptions {
  identity: string;
  approve: boolean;
  /** Why a request is denied (recorded in the event log). */
  reason?: string;
  /** The request the operator reviewed; refused unless it is the pending one. */
  requestId?: string;
  manifestPath?: string;
}

/** `bottle approve`, `bottle deny` and `bottle stop`: the commands an operator sends a running bottle. */
export function register(program: Command, cli: CliContext): void {
  const manifestPath = () => cli.manifestPath();
  program
    .command('approve')
    .description('approve the pending capability request of a bottle')
    .argument('<identity>')
    .option('--request <id>', 'the request you reviewed; refused unless it is the pending one')
    .action((identity: string, o: { request?: string }) =>
      cli.run(() => runDecide({ identity, approve: true, requestId: o.request, manifestPath: manifestPath() }, cli.io)),
    );
  program
    .command('deny')
    .description('deny the pending capability request of a bottle')
    .argument('<identity>')
    .requiredOption('--reason <text>', 'why (recorded in the event log)')
    .action((identity: string, o: { reason: string }) =>
      cli.run(() => runDecide({ identity, approve: false, reason: o.reason, manifestPath: manifestPath() }, cli.io)),
    );
  program
    .command('stop')
    .description('stop the agent; its state is preserved for resume')
    .argument('<identity>')
    .action((identity: string) => cli.run(() => runStop({ identity, manifestPath: manifestPath() }, cli.io)));
}

/** A y/N question on the terminal (Ctrl-C or end of input answers no); anything but y/yes is no. */
async function confirmed(question: string): Promise<boolean> {
  return /^y(es)?$/i.test((await askOnTerminal(question)).trim());
}

/** `bottle stop`: a command; the machine asks for the agent to stop and the preservation matrix keeps its state. */
export async function runStop(opts: StopOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  // The identity is validated before Redis is opened; a worker is started only for a bottle that can be stopped.
  const session = await openSession({ needWorker: false });
  try {
    if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
    const { state: live } = await currentState(session.log, identity);
    const command = { type: 'bottle.stop_requested', data: { by: operator() } } as const;
    if (!accepts(live, command))
      throw new RuntimeFailure(`${identity} is ${bottleStatus(live)}; there is no agent to stop`);
    const end = await commandAndFollow(
      session,
      identity,
      command,
      (ev) => io.stderr(`  ${describeEvent(ev, identity)}`),
      (ev) => ['bottle.preserved', 'bottle.cleaned', 'bottle.failed'].includes(ev.type),
      { say: (l) => io.stderr(l) },
    );
    if (end?.type === 'bottle.preserved') io.stdout(`stopped; resume with: bottle resume ${identity}`);
    return end?.type === 'bottle.failed' ? 1 : 0;
  } finally {
    await session.close();
  }
}

/** approve/deny the bottle's pending capability request. */
export async function runDecide(opts: DecideOptions, io: CliIO): Promise<number> {
  const identity = await checkIdentityArg(opts.identity, { manifestPath: opts.manifestPath });
  // Checked before Redis is opened; checkDecision checks it again for callers that have a session already.
  if (!opts.approve && !opts.reason?.trim()) {
    throw new UsageError('deny needs --reason TEXT (recorded in the event log)');
  }
  const session = await openSession({ needWorker: false });
  try {
    const { live, pending, command } = await checkDecision(session, identity, opts);
    // The operator sees exactly what the decision covers before it is recorded.
    if (opts.approve) for (const line of await capabilityReview(session, identity, live, pending)) io.stdout(line);
    const askFirst = opts.approve && opts.requestId === undefined && io.isTTY;
    if (askFirst && !(await confirmed(`approve ${visibleText(pending.request_id)}? [y/N] `))) {
      io.stderr('nothing approved');
      return 0;
    }
    const progress = (ev: LifecycleEvent) => io.stderr(`  ${describeEvent(ev, identity)}`);
    const end = await enqueueDecision(session, identity, command, progress, (l) => io.stderr(l));
    if (opts.approve && end?.type === 'bottle.preserved') {
      io.stdout(`approved; the bottle was rebuilt into saved state. Relaunch with: bottle resume ${identity}`);
    } else if (opts.approve && end?.type === 'capability.answered') {
      const scope = grantScopeText(pending);
      const entry = egressAllowEntry(pending) ?? capabilityTarget(pending);
      const host = visibleText(scope ? `${entry} ${scope}` : entry);
      io.stdout(
        end.data.delivered
          ? `approved; ${host} is allowed now in the running bottle (no resume needed) and kept for later resumes`
          : `approved; the bottle had already stopped: ${host} is kept for its next resume`,
      );
    } else if (opts.approve && end?.type === 'effect.failed') {
      io.stdout(
        `approved and kept for later resumes, but the running gateway was not told: ${visibleText(end.data.error)}`,
      );
      return 1;
    } else if (!opts.approve) {
      io.stdout(`denied ${visibleText(pending.request_id)}`);
      // A request that waited behind this one is now the pending one.
      const next = (await currentState(session.log, identity)).state.context.pendingCapability;
      if (next) {
        const asked = visibleText(`${next.request_id}: ${capabilityTarget(next)} (${next.reason})`);
        const decide = `bottle approve ${identity} / bottle deny ${identity} --reason ...`;
        io.stdout(`next pending request ${asked} — decide with: ${decide}`);
      }
    }
    return end?.type === 'bottle.failed' ? 1 : 0;
  } finally {
    await session.close();
  }
}
