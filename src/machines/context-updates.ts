import type { EventOf, LifecycleEvent } from '../events/schema.js';
import { freshRunFields, type BottleContext, type NetworkLayout, type PendingCapability } from './context.js';

/**
 * What events change in the machine's context: one pure function per named action, returning
 * the fields it changes; the machine's setup() makes each an `assign` action. The machine runs
 * each only on the events it names; any other event changes nothing.
 */

type UpdateArgs = { context: BottleContext; event: LifecycleEvent };
type Update = Partial<BottleContext>;

export function takePlan({ event }: UpdateArgs): Update {
  return event.type === 'bottle.start_requested' ? { plan: event.data.plan } : {};
}

/** A resume starts a new run with its new plan; identity and history-wide facts stay. */
export function startResumedRun({ context, event }: UpdateArgs): Update {
  if (event.type !== 'bottle.resume_requested') return {};
  return { ...freshRunFields(), plan: event.data.plan, resumes: context.resumes + 1 };
}

export function recordNetwork({ event }: UpdateArgs): Update {
  return event.type === 'network.created' ? { network: networkLayoutOf(event) } : {};
}

/** A canary was seen leaving: the latest sighting, and the running count of them. */
export function recordAlarm({ context, event }: UpdateArgs): Update {
  if (event.type !== 'egress.alarm') return {};
  const { at, rule, fingerprint, host, count } = event.data;
  return { alarm: { at, rule, fingerprint, host, count: (context.alarm?.count ?? 0) + count } };
}

/** Decision numbers restart with each gateway container. */
export function restartEgressDecisions(): Update {
  return { lastEgressDecision: 0 };
}

export function recordGatewayCa({ event }: UpdateArgs): Update {
  return event.type === 'gateway.ready' ? { gatewayCa: event.data.interception_ca ?? null } : {};
}

export function recordExit({ event }: UpdateArgs): Update {
  return event.type === 'agent.exited' ? { exitCode: event.data.code, signal: event.data.signal } : {};
}

export function recordSidecarExit({ event }: UpdateArgs): Update {
  return event.type === 'sidecar.exited' ? { sidecarExit: event.data } : {};
}

export function rememberStop({ event }: UpdateArgs): Update {
  return event.type === 'bottle.stop_requested' ? { stopRequested: true, stopRequestedBy: event.data.by } : {};
}

/** Every failure is kept, transient or not, for status output and diagnosis. */
export function recordError({ event }: UpdateArgs): Update {
  return event.type === 'effect.failed' ? { lastError: { ...event.data, seq: event.seq } } : {};
}

/** The first permanent failure of a launch region: what the teardown reports, whatever is recorded after it. */
export function recordLaunchFailure({ context, event }: UpdateArgs): Update {
  if (event.type !== 'effect.failed') return {};
  const { effect, error } = event.data;
  return { lastError: { ...event.data, seq: event.seq }, launchFailure: context.launchFailure ?? { effect, error } };
}

export function holdCapability({ event }: UpdateArgs): Update {
  return event.type === 'capability.requested' ? { pendingCapability: pendingFrom(event) } : {};
}

export function queueCapability({ context, event }: UpdateArgs): Update {
  if (event.type !== 'capability.requested') return {};
  return { queuedCapabilities: [...context.queuedCapabilities, pendingFrom(event)] };
}

/** The decided request hands the operator's turn to the one queued behind it. */
export function handTurnToNextCapability({ context }: UpdateArgs): Update {
  return {
    pendingCapability: context.queuedCapabilities[0] ?? null,
    queuedCapabilities: context.queuedCapabilities.slice(1),
  };
}

/** The agent's report that it waits for the operator; its line number counts as a recorded decision. */
export function recordAttention({ context, event }: UpdateArgs): Update {
  if (event.type !== 'agent.attention') return {};
  const { n, kind, message } = event.data;
  return {
    agentAttention: { kind, message, seq: event.seq },
    lastEgressDecision: Math.max(context.lastEgressDecision, n),
  };
}

export function recordWorking({ context, event }: UpdateArgs): Update {
  if (event.type !== 'agent.working') return {};
  return { agentAttention: null, lastEgressDecision: Math.max(context.lastEgressDecision, event.data.n) };
}

export function recordPreserved({ event }: UpdateArgs): Update {
  return event.type === 'bottle.preserved' ? { preservedReason: event.data.reason } : {};
}

/** A published port replaces any earlier entry for its host port. */
export function recordPortPublished({ context, event }: UpdateArgs): Update {
  if (event.type !== 'port.published') return {};
  const { address, host_port, bottle_port, container } = event.data;
  const others = context.ports.filter((p) => p.host_port !== host_port);
  return {
    ports: [...others, { address, host_port, bottle_port, container }].sort((a, b) => a.host_port - b.host_port),
  };
}

export function recordPortUnpublished({ context, event }: UpdateArgs): Update {
  if (event.type !== 'port.unpublished') return {};
  return { ports: context.ports.filter((p) => p.host_port !== event.data.host_port) };
}

/** The teardown that ends a run removes its forwarders with its other containers. */
export function closePorts(): Update {
  return { ports: [] };
}

/** The layout network.created reports; null for networks made before they had fixed addresses. */
function networkLayoutOf(event: EventOf<'network.created'>): NetworkLayout | null {
  const { internal, egress, subnets, addresses } = event.data;
  if (!subnets || !addresses) return null;
  return {
    internal: { name: internal, subnet: subnets.internal },
    egress: { name: egress, subnet: subnets.egress },
    addresses,
  };
}

/**
 * What the context keeps of a request: its data (without the queuing flag) and where it is in
 * the log; of a Dockerfile only its length (readers take the body from the event).
 */
function pendingFrom(event: EventOf<'capability.requested'>): PendingCapability {
  const { queue_if_pending: _queued, dockerfile, ...request } = event.data;
  const size = dockerfile !== undefined ? { dockerfile_chars: dockerfile.length } : {};
  return { ...request, ...size, requested_seq: event.seq };
}
