import { z } from 'zod';
import { AGENT_ATTENTION_KINDS, MAX_ATTENTION_MESSAGE_CHARS } from '../shared/agent-status.js';
import { CapabilityRequestSchema } from '../shared/capability.js';
import { HTTP_METHOD, pathGlobProblem } from '../shared/path-glob.js';
import { TrafficSummarySchema } from '../shared/traffic-summary.js';
import { UsageByModelSchema } from '../shared/token-usage.js';

/**
 * What the gateway container and the worker agree on: where the launcher
 * writes the gateway's files, which ports the gateway serves, and the JSON
 * lines the gateway prints on stdout (decisions, capability requests, its
 * listening and ready lines). Both sides import this module, so a line the
 * gateway writes is exactly a line the worker can read.
 */

export const GATEWAY_PROXY_PORT = 3128;
export const GATEWAY_CREDENTIAL_PORT = 3129;
/** The agent container's DNS server is the gateway (dns.ts); resolvers only speak to port 53. */
export const GATEWAY_DNS_PORT = 53;
/** The ssh-agent holding the bottle's ssh keys (ssh-agent.ts), on the gateway's internal address. */
export const GATEWAY_SSH_AGENT_PORT = 3130;
/** The environment variable that tells the gateway container its internal-network address, the one it listens on. */
export const GATEWAY_LISTEN_ADDRESS_ENV = 'GATEWAY_LISTEN_ADDRESS';

/** Config and secrets share one folder so one archive write delivers both. */
export const GATEWAY_FILES_DIR = '/etc/claude-bottle';
export const GATEWAY_CONFIG_PATH = `${GATEWAY_FILES_DIR}/gateway.json`;
export const GATEWAY_SECRETS_PATH = `${GATEWAY_FILES_DIR}/secrets.json`;
/**
 * Extra roots the gateway trusts for its own connections upstream (the worker's CLAUDE_BOTTLE_UPSTREAM_CA:
 * a TLS-inspecting corporate proxy, or a test's stand-in servers); Node reads it through NODE_EXTRA_CA_CERTS.
 */
export const GATEWAY_UPSTREAM_CA_PATH = `${GATEWAY_FILES_DIR}/upstream-ca.pem`;
/** The token the network watch signs its reports with (src/netwatch/protocol.ts); a new one per gateway. */
export const GATEWAY_NETWATCH_TOKEN_PATH = `${GATEWAY_FILES_DIR}/netwatch-token`;
/**
 * The operator's decisions on this run's capability requests, one file per request, written by the
 * worker while the gateway runs (root-owned like the config: the gateway reads them, never writes).
 * The worker then sends SIGHUP; the gateway also rereads the folder whenever the agent asks for a status.
 */
export const GATEWAY_DECISIONS_DIR = `${GATEWAY_FILES_DIR}/decisions`;

/**
 * The bottle's budget limit as the operator last raised it (`bottle budget --add`), written by the worker
 * into the running gateway (root-owned, like decisions) before it sends SIGHUP.
 */
export const GATEWAY_BUDGET_PATH = `${GATEWAY_FILES_DIR}/budget.json`;
export const BudgetFileSchema = z.object({ limit: z.number().nonnegative().finite() }).strict();
export type BudgetFile = z.infer<typeof BudgetFileSchema>;

/** Request ids the gateway issues are UUIDs; anything else cannot name a decision file. */
const DECISION_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/**
 * A method/path grant (an approved `bottle-request egress HOST --method M --path GLOB`): requests with
 * its methods (the entry's when absent) on its paths (the entry's when absent) pass the entry's rules too.
 */
export const GrantRulesSchema = z
  .object({
    methods: z.array(z.string().regex(HTTP_METHOD)).min(1).optional(),
    paths: z
      .array(z.string().refine((glob) => pathGlobProblem(glob) === null, 'not a path glob'))
      .min(1)
      .optional(),
  })
  .strict();
export type GrantRules = z.infer<typeof GrantRulesSchema>;
const GrantSchema = GrantRulesSchema.extend({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });
export type Grant = z.infer<typeof GrantSchema>;

export const DecisionFileSchema = z
  .object({
    request_id: z.string().regex(DECISION_REQUEST_ID),
    decision: z.enum(['approved', 'denied']),
    /** The operator's reason for a denial. */
    reason: z.string().nullable(),
    /** How an approval takes effect: the allowlist grows in place, or the bottle is rebuilt and resumed. */
    applies: z.enum(['live', 'rebuild']).nullable(),
    /** The allowlist entry a live approval adds. */
    allow: z.string().nullable(),
    /** A live method/path grant: widens the rules of the inspected entry that admits `host`:`port`. */
    grant: GrantSchema.optional(),
  })
  .strict();
export type DecisionFile = z.infer<typeof DecisionFileSchema>;

/** The decision file's name for a request id; undefined for an id that cannot be one. */
export function decisionFileName(requestId: string): string | undefined {
  return DECISION_REQUEST_ID.test(requestId) ? `${requestId}.json` : undefined;
}

export const DENIAL_REASONS = [
  'not_in_allowlist',
  'port_not_allowed',
  'private_address',
  'tls_sni_mismatch',
  'header_too_large',
  'rate_limited',
  'path_escape',
  'bad_request',
  'method_not_allowed',
  'tls_no_sni',
  'tunnel_host_mismatch',
  'tunnel_unrecognized',
  /** The agent asked the gateway's DNS server for a name; names are resolved only for proxied requests. */
  'dns_lookup',
  /** The agent sent a packet straight to an address off its network; refused in its own namespace (src/netwatch). */
  'direct_connection',
  /** An allowlist entry's `methods` rule does not admit the request's method (inspected or plain HTTP). */
  'method_rule',
  /** An allowlist entry's `paths` rule does not admit the request's canonical path. */
  'path_rule',
  /** The path cannot be read one way only (encoded separators, double encoding...): refused, not guessed. */
  'path_ambiguous',
  /** Inspection found a secret the gateway holds for this bottle. */
  'known_secret',
  /** Inspection found one of this bottle's decoy credentials. */
  'canary',
  /** Inspection found a credential shape (the detail names the pattern). */
  'secret_pattern',
  /** A host label under a wildcard entry looks like encoded data (DNS-label exfiltration). */
  'hostname_entropy',
  /** A compressed body that could not be decoded for scanning within bounds: refused, fail closed. */
  'body_unscannable',
  /** A Messages API call after the bottle's budget was spent (budget-refusal.ts). */
  'budget_exhausted',
] as const;
export type DenialReason = (typeof DENIAL_REASONS)[number];
export const ALLOW_REASONS = ['allowlisted', 'credential_route'] as const;
export type AllowReason = (typeof ALLOW_REASONS)[number];

/** Lines written by older gateways carry null for absent fields; both mean "absent". */
const absentAsUndefined = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((value) => (value === null ? undefined : value), schema.optional());

/** What inspection found, or which rule refused; the secret itself never appears, only its fingerprint. */
export const EgressDetailSchema = z.object({
  /** known_secret | canary | pattern | method_rule | path_rule | ... */
  class: z.string().min(1).max(64),
  /** The pattern's or rule's name. */
  rule: z.string().min(1).max(200),
  /** url | header | body | hostname | frame | connect | response */
  where: z.string().min(1).max(32),
  fingerprint: z.string().max(64).optional(),
});
export type EgressDetail = z.infer<typeof EgressDetailSchema>;

export const EgressLineSchema = z.object({
  t: z.literal('egress'),
  /** Decision number, monotonic per gateway run: lets a retried watcher skip recorded ones. */
  n: z.number().int().positive(),
  /** audited: inspection found something under `egress.dlp: "audit"` and let the request go on. */
  decision: z.enum(['allowed', 'denied', 'audited']),
  /** Absent when the request was refused before its target could be read (e.g. oversized headers). */
  host: absentAsUndefined(z.string()),
  port: absentAsUndefined(z.number().int()),
  method: absentAsUndefined(z.string()),
  reason: z.string(),
  detail: absentAsUndefined(EgressDetailSchema),
  at: z.string().optional(),
});
export type EgressLine = z.infer<typeof EgressLineSchema>;

export const CapabilityLineSchema = z.object({
  t: z.literal('capability'),
  n: z.number().int().positive(),
  request_id: CapabilityRequestSchema.shape.request_id,
  kind: CapabilityRequestSchema.shape.kind,
  host: absentAsUndefined(z.string()),
  port: absentAsUndefined(z.number().int().min(0).max(65535)),
  dockerfile: absentAsUndefined(z.string()),
  reason: CapabilityRequestSchema.shape.reason,
  methods: absentAsUndefined(z.array(z.string())),
  paths: absentAsUndefined(z.array(z.string())),
  at: z.string().optional(),
});
export type CapabilityLine = z.infer<typeof CapabilityLineSchema>;

/** Per-host traffic counters (traffic-ledger.ts), numbered with the decisions so a retried watcher skips them too. */
export const SummaryLineSchema = TrafficSummarySchema.extend({
  t: z.literal('summary'),
  n: z.number().int().positive(),
  at: z.string().optional(),
});
export type SummaryLine = z.infer<typeof SummaryLineSchema>;
/**
 * The agent's own report (`POST /_bottle/status`, status-routes.ts): it needs the operator, or it is
 * working again. Numbered with the decisions, so a retried watcher skips the ones it recorded.
 */
export const StatusLineSchema = z.object({
  t: z.literal('status'),
  n: z.number().int().positive(),
  state: z.enum(['attention', 'working']),
  kind: absentAsUndefined(z.enum(AGENT_ATTENTION_KINDS)),
  message: absentAsUndefined(z.string().max(MAX_ATTENTION_MESSAGE_CHARS)),
  at: z.string().optional(),
});
export type StatusLine = z.infer<typeof StatusLineSchema>;

/** Printed by the image's listen.pl once both ports listen, before Node boots. */
export const ListeningLineSchema = z.object({
  t: z.literal('listening'),
  proxy_port: z.number().int(),
  credential_port: z.number().int(),
});

/** Printed once the gateway enforces its policy. */
export const ReadyLineSchema = z.object({
  t: z.literal('ready'),
  proxy_port: z.number().int(),
  credential_port: z.number().int(),
  /** PEM of the per-run CA for HTTPS to credential-route hosts (public; the key stays in the gateway). */
  interception_ca: z.string().optional(),
  /** The gateway takes decisions in on SIGHUP; to a gateway started before it could, SIGHUP is fatal. */
  takes_decisions: z.literal(true).optional(),
  /** The gateway writes held reports on GATEWAY_REPORT_SIGNAL; to a gateway started before it could, that is fatal. */
  writes_reports: z.literal(true).optional(),
});
export type ReadyLine = z.infer<typeof ReadyLineSchema>;

/**
 * Asks a running gateway to write now what its rate bounds hold back (traffic counters, token usage),
 * then a `reported` line: after the agent exits, its last seconds reach the log before the gateway goes.
 */
export const GATEWAY_REPORT_SIGNAL = 'SIGUSR2';
export const ReportedLineSchema = z.object({ t: z.literal('reported') });
export type ReportedLine = z.infer<typeof ReportedLineSchema>;

/** Printed once the gateway has taken in a decision (an approved egress entry is enforced from then on). */
export const AnsweredLineSchema = z.object({
  t: z.literal('answered'),
  request_id: z.string(),
  decision: z.enum(['approved', 'denied']),
});
export type AnsweredLine = z.infer<typeof AnsweredLineSchema>;

/** Printed the first time the agent is sent a decided status: before a rebuild, the agent has heard why. */
export const ToldLineSchema = z.object({ t: z.literal('told'), request_id: z.string() });
export type ToldLine = z.infer<typeof ToldLineSchema>;

/**
 * Tokens the Messages API reported in the responses forwarded since the previous usage line, per model
 * (credential-proxy.ts reads them, usage-meter.ts aggregates them): at most one line every few seconds,
 * one more when the budget crosses a threshold, and one when the gateway stops.
 */
export const UsageLineSchema = z.object({
  t: z.literal('usage'),
  n: z.number().int().positive(),
  models: UsageByModelSchema,
  at: z.string().optional(),
});
export type UsageLine = z.infer<typeof UsageLineSchema>;

/** Printed once the gateway has taken in a raised budget limit (GATEWAY_BUDGET_PATH). */
export const BudgetSetLineSchema = z.object({ t: z.literal('budget_set'), limit: z.number() });
export type BudgetSetLine = z.infer<typeof BudgetSetLineSchema>;

export const DecisionLineSchema = z.discriminatedUnion('t', [
  EgressLineSchema,
  CapabilityLineSchema,
  SummaryLineSchema,
  UsageLineSchema,
  StatusLineSchema,
]);
export type DecisionLine = z.infer<typeof DecisionLineSchema>;

/** Everything the gateway writes to stdout. */
export type GatewayLine =
  | EgressLine
  | CapabilityLine
  | SummaryLine
  | StatusLine
  | ReadyLine
  | AnsweredLine
  | ToldLine
  | UsageLine
  | BudgetSetLine
  | ReportedLine;

/** One stdout line as `schema` describes it; stray text, other JSON lines and malformed JSON yield undefined. */
export function parseJsonLine<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, line: string): T | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** A numbered decision line (egress, capability, traffic summary, usage or the agent's status); else undefined. */
export const parseDecisionLine = (line: string): DecisionLine | undefined => parseJsonLine(DecisionLineSchema, line);
export const parseReadyLine = (line: string): ReadyLine | undefined => parseJsonLine(ReadyLineSchema, line);
export const isReadyLine = (line: string): boolean => parseReadyLine(line) !== undefined;
export const isReportedLine = (line: string): boolean => parseJsonLine(ReportedLineSchema, line) !== undefined;
export const isListeningLine = (line: string): boolean => parseJsonLine(ListeningLineSchema, line) !== undefined;
/** Whether the line says the gateway has taken in the decision on `requestId`. */
export const isAnsweredLineFor =
  (requestId: string) =>
  (line: string): boolean =>
    parseJsonLine(AnsweredLineSchema, line)?.request_id === requestId;
/** Whether the line says the agent has been sent the decision on `requestId`. */
export const isToldLineFor =
  (requestId: string) =>
  (line: string): boolean =>
    parseJsonLine(ToldLineSchema, line)?.request_id === requestId;
/** Whether the line says the gateway now enforces the budget limit `limit`. */
export const isBudgetSetLineFor =
  (limit: number) =>
  (line: string): boolean =>
    parseJsonLine(BudgetSetLineSchema, line)?.limit === limit;
