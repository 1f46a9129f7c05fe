import { hostname, userInfo } from 'node:os';
import type { LifecycleEvent } from '../events/schema.js';
import { accepts, bottleStatus, type BottleState, type Command, type PendingCapability } from '../machines/index.js';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import { visibleText } from '../shared/visible-text.js';
import { currentState } from '../engine/bottle-log.js';
import { commandAndFollow, type Session } from './session.js';

/**
 * One path for deciding a capability request, shared by `bottle approve` /
 * `bottle deny` and the dashboard: the same checks before anything is
 * enqueued, the same command event, the same follow until the decision has
 * taken effect.
 */

export type DecisionCommand = Command<'capability.approved' | 'capability.denied'>;

export interface CheckedDecision {
  live: BottleState;
  pending: PendingCapability;
  command: DecisionCommand;
}

export const operator = () => `${userInfo().username}@${hostname()}`;

/**
 * Refuses a decision the machine would not take: no such bottle, nothing
 * pending, or (with `requestId`) a pending request other than the one the
 * operator reviewed.
 */
export async function checkDecision(
  session: Session,
  identity: string,
  opts: { approve: boolean; reason?: string; requestId?: string },
): Promise<CheckedDecision> {
  if (!opts.approve && !opts.reason?.trim())
    throw new UsageError('deny needs --reason TEXT (recorded in the event log)');
  if (!(await session.log.exists(identity))) throw new RuntimeFailure(`no such bottle: ${identity}`);
  const { state: live } = await currentState(session.log, identity);
  const pending = live.context.pendingCapability;
  const request_id = pending?.request_id ?? '';
  const command: DecisionCommand = opts.approve
    ? { type: 'capability.approved', data: { request_id, by: operator() } }
    : { type: 'capability.denied', data: { request_id, reason: opts.reason!.trim(), by: operator() } };
  if (!pending || !accepts(live, command)) {
    throw new RuntimeFailure(`${identity} is ${bottleStatus(live)} and has no pending capability request`);
  }
  if (opts.requestId !== undefined && opts.requestId !== pending.request_id) {
    const pendingId = visibleText(pending.request_id);
    throw new UsageError(
      `request ${visibleText(opts.requestId)} is not ${identity}'s pending request (that is ${pendingId}); ` +
        `nothing was decided — review it with: bottle approve ${identity} --request ${pendingId}`,
    );
  }
  return { live, pending, command };
}

/**
 * Whether the decision has taken effect: a denial once it is recorded; an
 * approval once the bottle is preserved for its rebuild (or failed), or,
 * where the machine applies it to the running bottle, once the gateway has
 * been told (or telling it has failed for good).
 */
function decisionSettled(command: DecisionCommand, ev: LifecycleEvent): boolean {
  if (command.type === 'capability.denied') return ev.type === 'capability.denied';
  const data = ev.data as Record<string, unknown>;
  const type: string = ev.type;
  if (type === 'bottle.preserved' || type === 'bottle.failed') return true;
  if (type === 'capability.answered') return data.request_id === command.data.request_id;
  return type === 'effect.failed' && data.effect === 'answer_capability' && data.permanent === true;
}

/** Enqueues the checked decision and follows the bottle's log until it has taken effect; returns the ending event. */
export async function enqueueDecision(
  session: Session,
  identity: string,
  command: DecisionCommand,
  onEvent: (ev: LifecycleEvent) => void,
  say?: (line: string) => void,
  signal?: AbortSignal,
): Promise<LifecycleEvent | undefined> {
  return commandAndFollow(session, identity, command, onEvent, (ev) => decisionSettled(command, ev), { say, signal });
}
