import type { LifecycleEvent } from '../events/schema.js';
import type { BottleContext } from './context.js';
import type { EffectKind } from './effects.js';

/**
 * The conditions the machine's transitions name. Pure predicates of the context and the event;
 * the ones that keep old histories' meaning are in legacy-guards.ts.
 */

type GuardArgs = { context: BottleContext; event: LifecycleEvent };

const permanentFailureOf =
  (kind: EffectKind) =>
  ({ event }: GuardArgs) =>
    event.type === 'effect.failed' && event.data.permanent && event.data.effect === kind;

export const guards = {
  // Telling the agent a decision is a courtesy to it: failing to, in whatever state, never ends the bottle.
  isPermanentFailure: ({ event }: GuardArgs) =>
    event.type === 'effect.failed' && event.data.permanent && event.data.effect !== 'answer_capability',
  noCapabilityPending: ({ context }: GuardArgs) => context.pendingCapability === null,
  queuesBehindPending: ({ event }: GuardArgs) => event.type === 'capability.requested' && event.data.queue_if_pending,
  decidesPendingCapability: ({ context, event }: GuardArgs) =>
    (event.type === 'capability.approved' || event.type === 'capability.denied') &&
    context.pendingCapability?.request_id === event.data.request_id,
  pendingIsEgress: ({ context }: GuardArgs) => context.pendingCapability?.kind === 'egress',
  // An agent stopped because its enforcement was lost may exit 0 on the stop; its state is kept all the same.
  cleanExit: ({ context }: GuardArgs) =>
    context.exitCode === 0 && !context.stopRequested && context.sidecarExit === null,
  usesPipelock: ({ context }: GuardArgs) => context.plan?.egress?.proxy === 'pipelock',
  // Host credential routes: the agent trusts the CA the gateway creates at its start.
  // Plans from before inspection have no egress_entries, so their histories fold as they did.
  agentNeedsGatewayCa: ({ context }: GuardArgs) =>
    (context.plan?.credentials ?? []).some((route) => route.role !== 'anthropic-base-url' && Boolean(route.host)) ||
    (context.plan?.egress_entries ?? []).some((entry) => entry.inspect),
  gatewayFailed: permanentFailureOf('start_gateway'),
  gatewayReadyFailed: permanentFailureOf('await_gateway_ready'),
  pipelockFailed: permanentFailureOf('start_pipelock'),
  agentFailed: permanentFailureOf('start_agent'),
  netwatchFailed: permanentFailureOf('start_netwatch'),
  launchFailed: ({ context }: GuardArgs) => context.launchFailure !== null,
  hasBudget: ({ context }: GuardArgs) => context.budget !== null,
  publishesPorts: ({ context }: GuardArgs) => (context.plan?.ports ?? []).length > 0,
  portIsFree: ({ context, event }: GuardArgs) =>
    event.type === 'port.publish_requested' && !context.ports.some((p) => p.host_port === event.data.host_port),
};
