import { z } from 'zod';
import { BottlePlanSchema, PublishedPortSchema } from '../plan/schema.js';
import { BUDGET_STATES, BUDGET_UNITS } from '../shared/budget.js';
import { AGENT_ATTENTION_KINDS } from '../shared/agent-status.js';
import { CapabilityRequestSchema } from '../shared/capability.js';
import { UsageByModelSchema } from '../shared/token-usage.js';

/**
 * What the lifecycle machine remembers about one bottle. Plain JSON only: the
 * worker caches the folded state in Redis and `bottle replay` compares it
 * with a fresh fold, so everything here must round-trip through JSON.
 */
export const PendingCapabilitySchema = CapabilityRequestSchema.omit({ dockerfile: true }).extend({
  /** seq of the capability.requested event. */
  requested_seq: z.number(),
  /**
   * Length of a requested Dockerfile. The body stays in the capability.requested event at
   * requested_seq: the live state is rewritten on every append, and requests can queue up.
   */
  dockerfile_chars: z.number().int().nonnegative().optional(),
});
export type PendingCapability = z.infer<typeof PendingCapabilitySchema>;

export const PRESERVE_REASONS = ['crash', 'signal', 'stopped', 'capability', 'failure', 'enforcement_lost'] as const;
export const PreserveReasonSchema = z.enum(PRESERVE_REASONS);
export type PreserveReason = z.infer<typeof PreserveReasonSchema>;

/** The bottle's two networks and the fixed addresses on the internal one, as network.created reported them. */
export const NetworkLayoutSchema = z.object({
  internal: z.object({ name: z.string(), subnet: z.string() }),
  egress: z.object({ name: z.string(), subnet: z.string() }),
  addresses: z.object({ gateway: z.string(), agent: z.string(), pipelock: z.string() }),
});
export type NetworkLayout = z.infer<typeof NetworkLayoutSchema>;

/** An enforcing container's exit, as sidecar.exited reported it. */
export const SidecarExitSchema = z.object({
  role: z.enum(['gateway', 'netwatch']),
  container: z.string(),
  code: z.number(),
  signal: z.string().nullable(),
});
export type SidecarExit = z.infer<typeof SidecarExitSchema>;

/** Where the bottle stands against its budget, in the budget's unit (src/shared/budget.ts). */
export const BudgetStandingSchema = z.object({
  unit: z.enum(BUDGET_UNITS),
  /** The plan's limit plus every raise (`bottle budget --add`). */
  limit: z.number(),
  /** What the raises added, kept across resumes. */
  raised: z.number(),
  spent: z.number(),
  state: z.enum(BUDGET_STATES),
});
export type BudgetStanding = z.infer<typeof BudgetStandingSchema>;
/** The agent's own report that it waits for the operator, as agent.attention recorded it. */
export const AgentAttentionSchema = z.object({
  kind: z.enum(AGENT_ATTENTION_KINDS),
  /** The agent's words: untrusted, shown only through src/shared/visible-text.ts. */
  message: z.string(),
  /** seq of the agent.attention event: which attention this is (its time is the event's). */
  seq: z.number(),
});
export type AgentAttention = z.infer<typeof AgentAttentionSchema>;
/** A port this run publishes on its host, as port.published reported it. */
export const OpenPortSchema = PublishedPortSchema.extend({ container: z.string() });
export type OpenPort = z.infer<typeof OpenPortSchema>;

export const BottleContextSchema = z.object({
  identity: z.string(),
  /** The plan of the current run: from start, replaced by each resume. */
  plan: BottlePlanSchema.nullable(),
  /** This run's networks; null before network.created, and for networks made before they had fixed addresses. */
  network: NetworkLayoutSchema.nullable(),
  /** The CA this run's gateway created for host credential routes (public), once the gateway is ready. */
  gatewayCa: z.string().nullable(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  stopRequested: z.boolean(),
  stopRequestedBy: z.string().nullable(),
  /** The one request the operator decides next (approve/deny name it). */
  pendingCapability: PendingCapabilitySchema.nullable(),
  /** Requests made while one was pending, oldest first; a denial hands the turn to the next. */
  queuedCapabilities: z.array(PendingCapabilitySchema),
  resumes: z.number(),
  /** The latest effect.failed, transient or not; kept for status output and diagnosis. */
  lastError: z
    .object({
      effect: z.string(),
      error: z.string(),
      attempt: z.number(),
      permanent: z.boolean(),
      seq: z.number(),
    })
    .nullable(),
  /** The permanent failure that ends a launch; the other starts still report before the teardown. */
  launchFailure: z.object({ effect: z.string(), error: z.string() }).nullable(),
  preservedReason: PreserveReasonSchema.nullable(),
  /** The enforcing container whose exit ended this run (the agent is stopped, the bottle preserved). */
  sidecarExit: SidecarExitSchema.nullable(),
  /** Tokens per model over the bottle's whole history (usage.recorded), resumes included. */
  usage: UsageByModelSchema,
  /** The budget and what is spent of it; null when the bottle has none. */
  budget: BudgetStandingSchema.nullable(),
  /** The agent waits for the operator by its own report; null once it works again (and in a new run). */
  agentAttention: AgentAttentionSchema.nullable(),
  /** The latest canary alarm (egress.alarm) and how many canary refusals there have been; kept across resumes. */
  alarm: z
    .object({ at: z.string(), rule: z.string(), fingerprint: z.string(), host: z.string(), count: z.number() })
    .nullable()
    .default(null),
  /** Highest gateway decision number recorded this run, so a retried watcher skips those. */
  lastEgressDecision: z.number(),
  /** The ports this run publishes on its host, by host port; none once the run's containers are torn down. */
  ports: z.array(OpenPortSchema),
  /** seq of the last folded event (observations included). */
  seq: z.number(),
});
export type BottleContext = z.infer<typeof BottleContextSchema>;

/** xstate's state value: a state name, or for the parallel launch, each region's state. */
type StateValue = string | { [region: string]: StateValue };
const StateValueSchema: z.ZodType<StateValue> = z.lazy(() => z.union([z.string(), z.record(StateValueSchema)]));

/**
 * Bumped whenever the machine's states or context change shape: a live state
 * cached by another version is not trusted, and the log is folded again.
 */
export const MACHINE_VERSION = 8;

export const BottleStateSchema = z.object({
  machine: z.literal(MACHINE_VERSION),
  value: StateValueSchema,
  context: BottleContextSchema,
  seq: z.number().int().nonnegative(),
});
/** A plain, serializable snapshot of one bottle's lifecycle. */
export type BottleState = z.infer<typeof BottleStateSchema>;

/** A cached live state, or null when it was written by another machine version or is malformed. */
export function parseBottleState(raw: unknown): BottleState | null {
  const parsed = BottleStateSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

export function initialContext(identity: string): BottleContext {
  return { identity, plan: null, ...freshRunFields(), usage: {}, budget: null, resumes: 0, alarm: null, seq: 0 };
}

/** The per-run fields a resume starts afresh; identity, resumes and history-wide facts stay. */
export function freshRunFields(): Omit<
  BottleContext,
  'identity' | 'plan' | 'resumes' | 'seq' | 'usage' | 'budget' | 'alarm'
> {
  return {
    network: null,
    gatewayCa: null,
    exitCode: null,
    signal: null,
    stopRequested: false,
    stopRequestedBy: null,
    pendingCapability: null,
    // Requests belong to the run that made them; the resumed agent asks again if it still needs them.
    queuedCapabilities: [],
    lastError: null,
    launchFailure: null,
    preservedReason: null,
    sidecarExit: null,
    agentAttention: null,
    lastEgressDecision: 0,
    ports: [],
  };
}
