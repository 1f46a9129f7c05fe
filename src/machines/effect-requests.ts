import type { LifecycleEvent } from '../events/schema.js';
import type { BottleContext, PreserveReason } from './context.js';
import type { EffectKind, EffectParams } from './effects.js';

/**
 * How the machine asks for an effect: its one inert action, `requestEffect`, with params that
 * name the effect. The fold (fold.ts) reads them from xstate's pure `transition()` result and
 * never executes them, so replaying history has no side effects.
 */

export interface EffectIntent<K extends EffectKind = EffectKind> {
  kind: K;
  params: EffectParams<K>;
}

type RequestArgs = { context: BottleContext; event: LifecycleEvent };

/** A requestEffect action; params are computed from the context and event when the action runs. */
export function request<K extends EffectKind>(kind: K, params: (args: RequestArgs) => EffectParams<K>) {
  return {
    type: 'requestEffect' as const,
    params: (args: RequestArgs): EffectIntent<K> => ({ kind, params: params(args) }),
  };
}

export const noParams = () => ({});

export const launchParams = ({ context }: RequestArgs) => ({ network: context.network });

/** The gateway's launch; with a budget, the limit and what earlier runs spent, so a resumed bottle continues. */
export const gatewayStartParams = ({ context }: RequestArgs) => {
  const budget = context.budget;
  return {
    network: context.network,
    ...(budget ? { budget: { unit: budget.unit, limit: budget.limit, spent: budget.spent } } : {}),
  };
};

/** The raised limit, from the standing before the raise is folded in. */
export const budgetParams = ({ context, event }: RequestArgs) => ({
  limit: (context.budget?.limit ?? 0) + (event.type === 'budget.raised' ? event.data.add : 0),
});

export const agentStartParams = ({ context }: RequestArgs) => ({
  network: context.network,
  interception_ca: context.gatewayCa,
});

export const stopParams = ({ event }: RequestArgs) => ({
  by: event.type === 'bottle.stop_requested' ? event.data.by : null,
});

/** A stop nobody asked for: the machine's own, when the bottle's enforcement is gone. */
export const enforcementStopParams = () => ({ by: null });

/** The stop asked for during the launch, honoured once there is an agent to stop. */
export const rememberedStopParams = ({ context }: RequestArgs) => ({ by: context.stopRequestedBy });

export const snapshotParams = ({ context }: RequestArgs) => ({ code: context.exitCode, signal: context.signal });

export const preserveParams = ({ context }: RequestArgs) => ({ reason: preserveReason(context) });

export const applyCapabilityParams = ({ context, event }: RequestArgs) => ({
  request: context.pendingCapability!,
  approved_by: event.type === 'capability.approved' ? event.data.by : null,
});

/** The decision as the agent will learn it (requested before the pending request is replaced). */
export const answerParams = ({ context, event }: RequestArgs): EffectParams<'answer_capability'> => {
  const decided = context.pendingCapability!;
  if (event.type === 'capability.denied') {
    return { request: decided, decision: 'denied', reason: event.data.reason, by: event.data.by };
  }
  const by = event.type === 'capability.approved' ? event.data.by : null;
  return { request: decided, decision: 'approved', reason: null, by };
};

/** What the teardown reports: the failure that ended the launch, else the latest one. */
export const teardownParams = ({ context }: RequestArgs) => {
  const failure = context.launchFailure ?? context.lastError;
  return { effect: failure?.effect ?? 'unknown', error: failure?.error ?? 'unknown' };
};

/** The ports the plan publishes once the agent runs. */
export const plannedPortsParams = ({ context }: RequestArgs) => ({
  network: context.network,
  ports: context.plan?.ports ?? [],
});

/** The one port `bottle port` asked for. */
export const requestedPortParams = ({ context, event }: RequestArgs): EffectParams<'publish_ports'> => {
  if (event.type !== 'port.publish_requested') return { network: context.network, ports: [] };
  const { address, host_port, bottle_port } = event.data;
  return { network: context.network, ports: [{ address, host_port, bottle_port }] };
};

export const unpublishParams = ({ event }: RequestArgs) => ({
  host_port: event.type === 'port.unpublish_requested' ? event.data.host_port : 0,
});

/** Exit statuses above 128 mean the agent was killed by a signal (130 SIGINT, 137 SIGKILL, 143 SIGTERM). */
const killedBySignal = (code: number | null) => code !== null && code > 128;

function preserveReason(context: BottleContext): PreserveReason {
  // The graver fact wins: a bottle the user was stopping when its gateway or watch died still lost its enforcement.
  if (context.sidecarExit) return 'enforcement_lost';
  if (context.stopRequested) return 'stopped';
  return killedBySignal(context.exitCode) ? 'signal' : 'crash';
}
