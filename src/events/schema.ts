import { datetimeRegex, z } from 'zod';
import { BottlePlanSchema } from '../plan/schema.js';
import { AGENT_ATTENTION_KINDS, MAX_ATTENTION_MESSAGE_CHARS } from '../shared/agent-status.js';
import { CapabilityRequestSchema } from '../shared/capability.js';
import { TrafficSummarySchema } from '../shared/traffic-summary.js';
import { UsageByModelSchema } from '../shared/token-usage.js';
import { upcastData } from './upcast.js';

/**
 * Lifecycle events: the only record of what happened to a bottle. Every event
 * crosses Redis, so every shape is checked here. Stored events carry the
 * schema version they were written with (`v`); reading upcasts old versions to
 * the current one before validation, so the machine only ever sees current
 * shapes. Changing a shape means bumping its version and adding an upcaster in
 * upcast.ts, never editing stored history.
 */

const ExitSignalSchema = z.string().nullable();

const EgressDecisionDataSchema = z.object({
  /** Gateway decision number, monotonic per gateway run: lets a retried watcher skip recorded ones. */
  n: z.number().int().nonnegative(),
  host: z.string(),
  port: z.number().int().min(0).max(65535),
  method: z.string(),
  reason: z.string(),
  /** What inspection found or which rule refused (absent for host-level decisions); never the secret itself. */
  detail: z
    .object({
      class: z.string().min(1),
      rule: z.string().min(1),
      where: z.string().min(1),
      fingerprint: z.string().optional(),
    })
    .optional(),
});

const PortNumberSchema = z.number().int().min(1).max(65535);
const PortDataSchema = z.object({ address: z.string(), host_port: PortNumberSchema, bottle_port: PortNumberSchema });

export const EVENT_DATA_SCHEMAS = {
  'bottle.start_requested': z.object({ plan: BottlePlanSchema }),
  'bottle.resume_requested': z.object({ plan: BottlePlanSchema }),
  'bottle.prepared': z.object({ state_dir: z.string() }),
  'image.built': z.object({ tag: z.string(), gateway_tag: z.string(), cached: z.boolean() }),
  'network.created': z.object({
    internal: z.string(),
    egress: z.string(),
    /** Absent from logs written before bottle networks had subnets of their own. */
    subnets: z.object({ internal: z.string(), egress: z.string() }).optional(),
    /** The fixed addresses on the internal network, from its subnet. */
    addresses: z.object({ gateway: z.string(), agent: z.string(), pipelock: z.string() }).optional(),
  }),
  'gateway.started': z.object({
    container: z.string(),
    ip: z.string(),
    /** Docker's own start time of the container. */
    started_at: z.string().optional(),
    /**
     * v1 events (upcast with true) come from the launch whose one gateway
     * effect also started pipelock and whose agent start waited for the
     * gateway's ready line; a v2 gateway effect starts the gateway only.
     */
    legacy_launch: z.boolean(),
  }),
  /** The gateway enforces its policy (its ready line); with host routes, the CA the agent must trust. */
  'gateway.ready': z.object({ interception_ca: z.string().optional() }),
  'pipelock.started': z.object({ container: z.string(), ip: z.string(), started_at: z.string().optional() }),
  /** The network watch refuses and records, in the agent's namespace, every packet it sends off its network. */
  'netwatch.started': z.object({ container: z.string(), started_at: z.string().optional() }),
  /** No watch was attached: the agent had already exited (there is nothing left to watch). */
  'netwatch.skipped': z.object({ reason: z.string() }),
  'agent.started': z.object({
    container: z.string(),
    runtime: z.enum(['runc', 'runsc']),
    started_at: z.string().optional(),
  }),
  'agent.exited': z.object({ code: z.number().int(), signal: ExitSignalSchema }),
  /**
   * A container that enforces the bottle's policy (the gateway, the network watch) stopped while the
   * agent ran: the agent is stopped and the bottle preserved (`enforcement_lost`). Code -1: the
   * container was gone, its status unknown.
   */
  'sidecar.exited': z.object({
    role: z.enum(['gateway', 'netwatch']),
    container: z.string(),
    code: z.number().int(),
    signal: ExitSignalSchema,
  }),
  'bottle.stop_requested': z.object({ by: z.string() }),
  'transcript.snapshotted': z.object({
    files: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    missing: z.boolean(),
    warning: z.string().optional(),
    /** Files not copied because they would take the snapshot over the bottle's limit: the first few, named. */
    skipped: z.array(z.object({ path: z.string(), bytes: z.number().int().nonnegative() })).optional(),
    /** How many files were skipped in all, their bytes, and the limit they would have gone over. */
    skipped_count: z.number().int().nonnegative().optional(),
    skipped_bytes: z.number().int().nonnegative().optional(),
    limit_bytes: z.number().int().nonnegative().optional(),
  }),
  'bottle.preserved': z.object({
    reason: z.enum(['crash', 'signal', 'stopped', 'capability', 'failure', 'enforcement_lost']),
    /** e.g. "bottle resume dev-a1b2c" */
    resume_hint: z.string(),
  }),
  'bottle.cleaned': z.object({}),
  'capability.requested': CapabilityRequestSchema.extend({
    /**
     * v2: a request that arrives while another is pending waits its turn.
     * v1 logs (upcast with false) keep their meaning: such a request was ignored.
     */
    queue_if_pending: z.boolean(),
  }),
  'capability.approved': z.object({
    request_id: z.string().min(1),
    by: z.string(),
    /**
     * v1 decisions (upcast with true) were never told to the agent, and an approved v1 egress request was
     * applied by preserving the bottle for a rebuild; a v2 egress approval applies live (see egress.granted).
     */
    legacy_decision: z.literal(true).optional(),
  }),
  'capability.denied': z.object({
    request_id: z.string().min(1),
    reason: z.string(),
    by: z.string(),
    /** v1 denials (upcast with true) were only recorded; a v2 denial is told to the agent through the gateway. */
    legacy_decision: z.literal(true).optional(),
  }),
  /**
   * An approved egress request's allowlist entry: kept for later resumes, and added to the running
   * gateway's allowlist in place when `live` (false: the gateway had already stopped).
   */
  'egress.granted': z.object({
    request_id: z.string().min(1),
    entry: z.string().min(1),
    live: z.boolean(),
    /** A method/path grant on the allowlisted `entry`: the methods and path globs it adds to the entry's rules. */
    methods: z.array(z.string()).optional(),
    paths: z.array(z.string()).optional(),
  }),
  /** The gateway was told a decision, so the agent's `bottle-request` learns it (false: the gateway was gone). */
  'capability.answered': z.object({
    request_id: z.string().min(1),
    decision: z.enum(['approved', 'denied']),
    delivered: z.boolean(),
  }),
  'egress.allowed': EgressDecisionDataSchema,
  'egress.denied': EgressDecisionDataSchema,
  /** Inspection found something under `egress.dlp: "audit"`: recorded, and the request went on. */
  'egress.audited': EgressDecisionDataSchema,
  /** The gateway's per-host traffic counters since it started, for the hosts that changed (bounded rate and size). */
  'egress.summary': TrafficSummarySchema,
  /**
   * A decision of the build gateway while this bottle's image was built (src/effects/docker/build-gateway.ts):
   * a fetch a Dockerfile's RUN made through the proxy, allowed or refused. Kept apart from egress.* so the
   * agent's traffic and the build's are never counted together.
   */
  'build.egress': EgressDecisionDataSchema.extend({
    image: z.string(),
    decision: z.enum(['allowed', 'denied', 'audited']),
  }),
  /**
   * The agent waits for the operator, by its own report (`bottle-status`, Claude Code's hooks): a
   * permission prompt, a question, its turn ended. The message is the agent's words, bounded.
   * `n` is the gateway's line number, shared with its decisions.
   */
  'agent.attention': z.object({
    n: z.number().int().nonnegative(),
    kind: z.enum(AGENT_ATTENTION_KINDS),
    message: z.string().max(MAX_ATTENTION_MESSAGE_CHARS),
  }),
  /** The agent works again (a prompt submitted, a tool run after a permission): it no longer waits. */
  'agent.working': z.object({ n: z.number().int().nonnegative() }),
  /**
   * One of the bottle's decoy credentials (canaries) was seen leaving: the request was refused, and this
   * raises the alarm the operator sees in `list`. One event stands for every canary refusal in a batch of
   * decisions (`count`), so a flood is summarised; `at`, `rule`, `fingerprint` and `host` are the latest's.
   */
  'egress.alarm': z.object({
    at: z.string(),
    rule: z.string().min(1).max(200),
    fingerprint: z.string().max(64),
    host: z.string(),
    count: z.number().int().positive(),
  }),
  'effect.failed': z.object({
    /** An effect kind of the machine (src/machines/effects.ts); kept a string so retired kinds still read. */
    effect: z.string().min(1),
    error: z.string(),
    attempt: z.number().int().nonnegative(),
    permanent: z.boolean(),
  }),
  'bottle.failed': z.object({ effect: z.string(), error: z.string() }),
  /**
   * Tokens the Messages API reported for the bottle's calls since the previous usage.recorded, per model
   * (the gateway's usage line `n`); folded into the machine's totals, so replay reproduces them.
   */
  'usage.recorded': z.object({ n: z.number().int().nonnegative(), models: UsageByModelSchema }),
  /** The operator raised the budget (`bottle budget --add`), in the budget's unit. */
  'budget.raised': z.object({ add: z.number().positive().finite(), by: z.string() }),
  /** The running gateway enforces the raised limit (false: there was no running gateway to tell). */
  'budget.applied': z.object({ limit: z.number().nonnegative().finite(), live: z.boolean() }),
  /** `bottle rm` (or `cleanup --discard-older-than`) asked to throw a preserved or failed bottle away. */
  'bottle.discard_requested': z.object({ by: z.string() }),
  /** The bottle is gone for good: its state folder, its Docker resources and the images only it used. */
  'bottle.discarded': z.object({
    /** Image tags removed: the bottle's own, which no other kept bottle uses. */
    images: z.array(z.string()),
    /** Its image tags left in place, and why (built-in and shared, used by another bottle, a container uses it). */
    images_kept: z.array(z.object({ tag: z.string(), reason: z.string() })),
  }),
  /** `bottle port`: publish one more port of the running bottle on its host. */
  'port.publish_requested': PortDataSchema.extend({ by: z.string() }),
  /** A forwarder container publishes address:host_port and connects only to the agent's bottle_port. */
  'port.published': PortDataSchema.extend({ container: z.string() }),
  /** The port could not be published (taken on the host, no address left); the bottle runs on without it. */
  'port.publish_failed': PortDataSchema.extend({ error: z.string() }),
  /** `bottle port --remove`: close one published port of the running bottle. */
  'port.unpublish_requested': z.object({ host_port: PortNumberSchema, by: z.string() }),
  /** Its forwarder is gone (`removed` false: there was none left to remove). */
  'port.unpublished': z.object({ host_port: PortNumberSchema, removed: z.boolean() }),
  /**
   * A state folder the original (Python) claude-bottle preserved, taken into this log as preserved: what its
   * metadata.json says, the host whose state folder holds it, its own Dockerfile (verbatim) and whether it
   * has a transcript snapshot. Its first resume plans from the manifest like a start.
   */
  'bottle.imported': z.object({
    agent: z.string().min(1),
    cwd: z.string().min(1),
    copy_cwd: z.boolean(),
    started_at: z.string(),
    host: z.string(),
    transcript: z.boolean(),
    dockerfile: z.string().optional(),
  }),
} as const;

export type EventType = keyof typeof EVENT_DATA_SCHEMAS;
export const EVENT_TYPES = Object.keys(EVENT_DATA_SCHEMAS) as EventType[];
export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA_SCHEMAS)[T]>;

/** The schema version new events of each type are written with. */
export const CURRENT_VERSION: Readonly<Record<EventType, number>> = Object.freeze({
  ...(Object.fromEntries(EVENT_TYPES.map((t) => [t, 1])) as Record<EventType, number>),
  // v1 stored only { exit_code }; v2 splits out the signal (see upcast.ts).
  'agent.exited': 2,
  // v2 adds queue_if_pending (see upcast.ts).
  'capability.requested': 2,
  // v2 adds legacy_launch (see upcast.ts).
  'gateway.started': 2,
  // v2 decisions reach the agent; v1 ones are upcast with legacy_decision (see upcast.ts).
  'capability.approved': 2,
  'capability.denied': 2,
});

/** Seq + timestamp + version around each type's data, as one discriminated union on `type`. */
function envelope<T extends EventType>(type: T) {
  return z.object({
    seq: z.number().int().positive(),
    type: z.literal(type),
    at: z.string().datetime({ offset: true }),
    v: z.literal(CURRENT_VERSION[type]),
    data: EVENT_DATA_SCHEMAS[type],
  });
}

type EnvelopeOf<T extends EventType> = ReturnType<typeof envelope<T>>;
type EnvelopeTuple = { [T in EventType]: EnvelopeOf<T> }[EventType];

const envelopes = EVENT_TYPES.map((t) => envelope(t)) as unknown as [EnvelopeTuple, EnvelopeTuple, ...EnvelopeTuple[]];
export const LifecycleEventSchema = z.discriminatedUnion('type', envelopes);

export type EventOf<T extends EventType> = {
  seq: number;
  type: T;
  at: string;
  v: number;
  data: EventData<T>;
};
export type LifecycleEvent = { [T in EventType]: EventOf<T> }[EventType];

/** An event not yet in the log (the log assigns seq, `at` and the version), typed by its type. */
export type NewEvent<T extends EventType = EventType> = { [K in T]: { type: K; data: EventData<K> } }[T];

export const OBSERVATION_TYPES = [
  'egress.allowed',
  'egress.denied',
  'egress.audited',
  'egress.summary',
  'build.egress',
] as const;
export type ObservationType = (typeof OBSERVATION_TYPES)[number];
const OBSERVATION_TYPE_SET: ReadonlySet<string> = new Set<string>(OBSERVATION_TYPES);

/** Observations (egress decisions) never change the lifecycle, so folding skips the machine for them. */
export function isObservation(type: string): type is ObservationType {
  return OBSERVATION_TYPE_SET.has(type);
}

/** The event form of isObservation, narrowing the event itself. */
export function isObservationEvent(event: LifecycleEvent): event is Extract<LifecycleEvent, { type: ObservationType }> {
  return OBSERVATION_TYPE_SET.has(event.type);
}

export function isEventType(type: unknown): type is EventType {
  return typeof type === 'string' && Object.prototype.hasOwnProperty.call(EVENT_DATA_SCHEMAS, type);
}

export class InvalidEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

const RawEnvelopeSchema = z.object({
  seq: z.unknown(),
  type: z.string(),
  at: z.unknown(),
  /** Events written before versioning existed count as v1. */
  v: z.number().int().positive().default(1),
  data: z.unknown(),
});

/**
 * Turns a stored or received event into a current-version LifecycleEvent:
 * upcasts old versions, then validates. Throws InvalidEventError with the seq
 * and type in the message.
 */
export function parseEvent(raw: unknown): LifecycleEvent {
  if (isPlainRecord(raw)) {
    const fast = parseObservationFast(raw.seq, raw.type, raw.at, raw.v, raw.data);
    if (fast) return fast;
  }
  const head = RawEnvelopeSchema.safeParse(raw);
  if (!head.success)
    throw new InvalidEventError(`malformed event envelope: ${head.error.issues[0]?.message ?? 'invalid'}`);
  const { type, v } = head.data;
  const where = `event ${String(head.data.seq)} (${type})`;
  if (!isEventType(type)) throw new InvalidEventError(`${where}: unknown event type`);
  const current = CURRENT_VERSION[type];
  if (v > current) {
    throw new InvalidEventError(
      `${where}: schema version ${v} is newer than this claude-bottle understands (${current}); upgrade claude-bottle`,
    );
  }
  const data = v < current ? upcastData(type, v, current, head.data.data) : head.data.data;
  const parsed = LifecycleEventSchema.safeParse({ ...head.data, v: current, data });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidEventError(`${where}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}

/** Checks a new event's data against its current schema before it is stamped and appended. */
export function parseNewEventData<T extends EventType>(type: T, data: unknown): EventData<T>;
export function parseNewEventData(type: string, data: unknown): Record<string, unknown>;
export function parseNewEventData(type: string, data: unknown): Record<string, unknown> {
  if (!isEventType(type)) throw new InvalidEventError(`new event: unknown event type ${JSON.stringify(type)}`);
  const parsed = EVENT_DATA_SCHEMAS[type].safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidEventError(
      `new ${type} event: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------
// Observations are ~all of a long history, so they get a hand-written check
// that accepts only what the zod schema accepts (the events test pins the two
// against each other) but is an order of magnitude cheaper. Anything it is
// unsure about falls through to zod.

/** The regex zod's `datetime({ offset: true })` runs on `at`, compiled once instead of on every check. */
const AT_PATTERN = datetimeRegex({ precision: null, offset: true, local: false });
/** Events appended together share their time, so the last time that passed usually passes again. */
let lastValidAt: string | undefined;

function isValidAt(at: unknown): at is string {
  if (at !== undefined && at === lastValidAt) return true;
  if (typeof at !== 'string' || !AT_PATTERN.test(at)) return false;
  lastValidAt = at;
  return true;
}

/** The checks below are of version 1 data; a later version takes zod and its upcasters. */
const OBSERVATIONS_AT_V1 = CURRENT_VERSION['egress.allowed'] === 1 && CURRENT_VERSION['egress.denied'] === 1;

/** What zod takes for an object: anything else (arrays, class instances, thenables) is left to zod. */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && typeof (value as { then?: unknown }).then !== 'function';
}

/**
 * parseEvent for an event already taken apart, as the log reads it, without
 * building an envelope object for the common case. `v` undefined means absent.
 */
export function parseStoredEvent(
  seq: number,
  type: unknown,
  at: unknown,
  v: number | undefined,
  data: unknown,
): LifecycleEvent {
  return parseObservationFast(seq, type, at, v, data) ?? parseEvent({ seq, type, at, v, data });
}

function parseObservationFast(
  seq: unknown,
  type: unknown,
  at: unknown,
  v: unknown,
  data: unknown,
): LifecycleEvent | undefined {
  if (type !== 'egress.allowed' && type !== 'egress.denied') return undefined;
  // An absent version counts as v1, as RawEnvelopeSchema's default has it.
  if ((v !== 1 && v !== undefined) || !OBSERVATIONS_AT_V1) return undefined;
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1) return undefined;
  if (!isValidAt(at)) return undefined;
  if (!isPlainRecord(data)) return undefined;
  // A decision with a detail (a rule, what inspection found) is left to zod, which checks and keeps it.
  if (data.detail !== undefined) return undefined;
  const { n, host, port, method, reason } = data;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  if (typeof host !== 'string' || typeof method !== 'string' || typeof reason !== 'string') return undefined;
  // Anything not exactly right falls through to zod, which produces the error message.
  return { seq, type, at, v: 1, data: { n, host, port, method, reason } };
}
