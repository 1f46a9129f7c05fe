import { z } from 'zod';
import type { EventType, NewEvent, ObservationType } from '../events/schema.js';
import { BUDGET_UNITS } from '../shared/budget.js';
import { NetworkLayoutSchema, PendingCapabilitySchema, PreserveReasonSchema } from './context.js';
import { PublishedPortSchema } from '../plan/schema.js';

/**
 * The effect vocabulary of the lifecycle machine: every effect it can ask
 * for, the params it passes (checked when a job crosses Redis), and the
 * events the effect may report back. The worker runs one handler per kind
 * (src/effects/index.ts); a handler that returns an event its effect may not
 * produce, or data of the wrong shape, does not type-check.
 */
/** An event besides an effect's outcomes that shows the effect has nothing more to do. */
interface Settler {
  type: EventType;
  when?: (data: unknown) => boolean;
}

function effect<const Outcomes extends readonly EventType[], Params extends z.ZodTypeAny>(
  params: Params,
  outcomes: Outcomes,
  settledBy: readonly Settler[] = [],
) {
  return { params, outcomes, settledBy };
}

/** A v1 gateway.started: its launch's one gateway effect also started pipelock. */
const legacyGatewayStart: Settler = {
  type: 'gateway.started',
  when: (data) => (data as { legacy_launch?: boolean }).legacy_launch === true,
};

const noParams = z.object({}).strict();
/** Null for networks made before they had fixed addresses: such a launch cannot go on. */
const launchParams = z.object({ network: NetworkLayoutSchema.nullable() });

export const EFFECTS = {
  /** State folder and metadata for this run. */
  prepare_state: effect(noParams, ['bottle.prepared']),
  /** The agent and gateway images, built unless their tags exist. */
  build_image: effect(noParams, ['image.built']),
  /** The internal and egress networks, each on its own subnet from the pool. */
  create_networks: effect(noParams, ['network.created']),
  /** The gateway container, configured and started at its fixed address. */
  start_gateway: effect(
    launchParams.extend({
      /** The budget's unit, limit and what earlier runs spent; absent without a budget. */
      budget: z.object({ unit: z.enum(BUDGET_UNITS), limit: z.number(), spent: z.number() }).optional(),
    }),
    ['gateway.started'],
  ),
  /** Waits until the started gateway enforces its policy (its ready line). */
  await_gateway_ready: effect(noParams, ['gateway.ready']),
  /** The pipelock container, when pipelock is the egress hop. */
  start_pipelock: effect(launchParams, ['pipelock.started'], [legacyGatewayStart]),
  /** The hardened agent container, provisioned and started. */
  start_agent: effect(launchParams.extend({ interception_ca: z.string().nullable() }), ['agent.started']),
  /** The network watch in the started agent's namespace: refuses and reports what it sends off its network. */
  start_netwatch: effect(launchParams, ['netwatch.started', 'netwatch.skipped']),
  /** Follows the agent until it exits, recording the gateway's decisions as observations meanwhile. */
  watch_agent: effect(noParams, ['agent.exited']),
  /**
   * Follows the containers that enforce the policy while the agent runs (the gateway, the network watch):
   * reports one that stops first; ends with nothing to report when the agent stops first.
   */
  watch_sidecars: effect(noParams, ['sidecar.exited'], [{ type: 'agent.exited' }]),
  /** Asks the agent to stop; its exit is reported by watch_agent. */
  stop_agent: effect(z.object({ by: z.string().nullable() }), [], [{ type: 'agent.exited' }]),
  /** Copies the agent's transcript into the state folder. */
  snapshot_transcript: effect(z.object({ code: z.number().nullable(), signal: z.string().nullable() }), [
    'transcript.snapshotted',
  ]),
  /** Keeps the state for a resume and removes the bottle's Docker resources. */
  preserve: effect(z.object({ reason: PreserveReasonSchema }), ['bottle.preserved']),
  /** Removes the bottle's Docker resources and its state. */
  cleanup: effect(noParams, ['bottle.cleaned']),
  /** Writes an approved capability change into the state, snapshots, preserves and tears down. */
  apply_capability: effect(z.object({ request: PendingCapabilitySchema, approved_by: z.string().nullable() }), [
    'transcript.snapshotted',
    'bottle.preserved',
  ]),
  /**
   * Tells the running gateway a decision, so the agent's `bottle-request` learns it; an approved egress
   * request also grows the gateway's allowlist in place and is kept for later resumes.
   */
  answer_capability: effect(
    z.object({
      request: PendingCapabilitySchema,
      decision: z.enum(['approved', 'denied']),
      /** The operator's reason for a denial. */
      reason: z.string().nullable(),
      by: z.string().nullable(),
    }),
    ['egress.granted', 'capability.answered'],
  ),
  /** Tells the running gateway a raised budget limit, so the agent's next Messages API call goes through. */
  apply_budget: effect(z.object({ limit: z.number() }), ['budget.applied']),
  /** Throws a kept bottle away: its Docker resources, the images only it used, and its state folder. */
  discard: effect(noParams, ['bottle.discarded']),
  /** Tears down after a permanent failure, keeping the state for a resume. */
  teardown_failed: effect(z.object({ effect: z.string(), error: z.string() }), ['bottle.failed']),
  /**
   * A forwarder container per port: published on the host, connecting only to the agent's port on the internal
   * network. Each port reports published or failed; a failure never ends the bottle.
   */
  publish_ports: effect(z.object({ network: NetworkLayoutSchema.nullable(), ports: z.array(PublishedPortSchema) }), [
    'port.published',
    'port.publish_failed',
  ]),
  /** Removes one port's forwarder. */
  unpublish_port: effect(z.object({ host_port: z.number().int() }), ['port.unpublished']),
};

export type EffectKind = keyof typeof EFFECTS;
export const EFFECT_KINDS = Object.keys(EFFECTS) as EffectKind[];
export type EffectParams<K extends EffectKind> = z.infer<(typeof EFFECTS)[K]['params']>;

export type EffectRequest<K extends EffectKind = EffectKind> = {
  [P in K]: {
    kind: P;
    identity: string;
    /** seq of the event whose fold requested this effect; with kind it makes the job id. */
    causedBySeq: number;
    params: EffectParams<P>;
  };
}[K];

/** The events an effect of kind K may return. */
export type EffectOutcome<K extends EffectKind> = NewEvent<(typeof EFFECTS)[K]['outcomes'][number]>;

/** Events an effect may append while it runs (the gateway's decisions, seen while watching the agent). */
export type ObservationEvent = NewEvent<
  ObservationType | 'capability.requested' | 'usage.recorded' | 'agent.attention' | 'agent.working' | 'egress.alarm'
>;

export function isEffectKind(kind: unknown): kind is EffectKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(EFFECTS, kind);
}

export class InvalidEffectRequestError extends Error {
  override name = 'InvalidEffectRequestError';
}

const RequestEnvelopeSchema = z.object({
  kind: z.string(),
  identity: z.string(),
  causedBySeq: z.number().int().nonnegative(),
  params: z.unknown(),
});

/** A job's effect request, its params checked against its kind's schema. */
export function parseEffectRequest(raw: unknown): EffectRequest {
  const envelope = RequestEnvelopeSchema.safeParse(raw);
  if (!envelope.success) throw new InvalidEffectRequestError(`malformed effect request: ${envelope.error.message}`);
  const { kind, identity, causedBySeq } = envelope.data;
  if (!isEffectKind(kind)) throw new InvalidEffectRequestError(`unknown effect ${JSON.stringify(kind)}`);
  const params = EFFECTS[kind].params.safeParse(envelope.data.params ?? {});
  if (!params.success) {
    const issue = params.error.issues[0];
    const where = issue ? `${issue.path.join('.') || '(params)'}: ${issue.message}` : 'invalid';
    throw new InvalidEffectRequestError(`effect ${kind} for ${identity}: ${where}`);
  }
  return { kind, identity, causedBySeq, params: params.data } as EffectRequest;
}

/** Whether `event` says an effect of this kind is done (its outcome, a permanent failure, or a settling event). */
export function settles(kind: EffectKind, event: { type: string; data: unknown }): boolean {
  const spec = EFFECTS[kind];
  if ((spec.outcomes as readonly string[]).includes(event.type)) return true;
  if (spec.settledBy.some((s) => s.type === event.type && (s.when?.(event.data) ?? true))) return true;
  if (event.type !== 'effect.failed') return false;
  const failure = event.data as { effect: string; permanent: boolean };
  return failure.effect === kind && failure.permanent;
}
