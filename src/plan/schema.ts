import { z } from 'zod';
import { BudgetSchema } from '../shared/budget.js';

/**
 * The resolved launch plan: everything a launch needs, with no secret values.
 * It is printed by `start --dry-run`, carried inside `bottle.start_requested`,
 * and read by the Docker effects. Crosses the CLI -> Redis -> worker boundary,
 * hence zod.
 */
export const MountSchema = z.object({
  kind: z.enum(['bind', 'copy']),
  source: z.string(),
  target: z.string(),
  readonly: z.boolean().default(false),
  purpose: z.enum(['cwd', 'prompt', 'skill', 'ssh', 'transcript']),
});
export type Mount = z.infer<typeof MountSchema>;

export const CredentialRouteSchema = z.object({
  role: z.literal('anthropic-base-url').optional(),
  host: z.string().optional(),
  upstream: z.string().optional(),
  auth: z.enum(['oauth', 'api-key', 'bearer', 'basic', 'header']),
  header: z.string().optional(),
  /** Where the secret comes from on the host, e.g. `env:GITHUB_TOKEN`, `file:/path`, `command`. Never the value. */
  token_source: z.string(),
});
export type CredentialRoute = z.infer<typeof CredentialRouteSchema>;

export const ImagePlanSchema = z.object({
  /** `claude-bottle/<bottle>:<first 16 hex of the context hash>` */
  tag: z.string(),
  context_hash: z.string(),
  /** Absolute Dockerfile path, or `builtin:agent` for the default agent image. */
  dockerfile: z.string(),
  builtin: z.boolean(),
});
export type ImagePlan = z.infer<typeof ImagePlanSchema>;

/**
 * A folder or file of the CLI's machine that the bottle needs, sent to the
 * worker as a content-addressed blob (src/blobs): a Dockerfile's build
 * context, the prompt, a skill, a copied working folder.
 */
export const UploadSchema = z.object({
  source: z.string(),
  /** As a build context (links resolved inside it), as a tree copied into the bottle, or one file. */
  reading: z.enum(['build-context', 'copy', 'file']),
  blob: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
});
export type Upload = z.infer<typeof UploadSchema>;

export const EgressEntrySchema = z.object({
  host: z.string(),
  inspect: z.boolean(),
  methods: z.array(z.string()).optional(),
  paths: z.array(z.string()).optional(),
  /** Method/path grants approved through `bottle-request egress` in earlier runs: a resume keeps them. */
  grants: z
    .array(z.object({ methods: z.array(z.string()).optional(), paths: z.array(z.string()).optional() }))
    .optional(),
});
export type EgressEntry = z.infer<typeof EgressEntrySchema>;
/** A port published on the host (src/shared/port-spec.ts): `address:host_port` forwards to the agent's bottle_port. */
export const PublishedPortSchema = z.object({
  address: z.string(),
  host_port: z.number().int().min(1).max(65535),
  bottle_port: z.number().int().min(1).max(65535),
});
export type PublishedPort = z.infer<typeof PublishedPortSchema>;
/** A launch's decoy credentials (canaries.ts mints them and says where they go). */
export const CanariesSchema = z.object({
  aws_access_key_id: z.string(),
  aws_secret_access_key: z.string(),
  github_token: z.string(),
});
export type Canaries = z.infer<typeof CanariesSchema>;

export const BottlePlanSchema = z.object({
  identity: z.string(),
  agent: z.string(),
  bottle: z.string(),
  image: ImagePlanSchema,
  gateway_image: ImagePlanSchema,
  runtime: z.enum(['runc', 'runsc']),
  /** The container backend (CLAUDE_BOTTLE_BACKEND); plans from before it was recorded ran on docker. */
  backend: z.enum(['docker']).optional(),
  /** Why the bottle runs under runc, when it does, and how to get runsc. */
  runtime_note: z.string().optional(),
  networks: z.object({ internal: z.string(), egress: z.string() }),
  containers: z.object({
    gateway: z.string(),
    agent: z.string(),
    /** The network watch in the agent's namespace (src/netwatch); absent in plans from before, which had none. */
    netwatch: z.string().optional(),
  }),
  hosts: z.array(z.string()),
  /**
   * How the gateway treats each of `hosts` (egress-entries.ts in the gateway): inspected or not, and the
   * entry's method and path rules. Absent in plans from before inspection, whose bottles inspect nothing.
   */
  egress_entries: z.array(EgressEntrySchema).optional(),
  default_hosts: z.array(z.string()),
  /**
   * What this bottle's own image build may fetch, through a build gateway (src/plan/build-hosts.ts): the
   * package hosts plus `hosts`. Absent in plans from before, whose builds get the same list derived.
   */
  build_hosts: z.array(z.string()).optional(),
  extra_hosts: z.record(z.string()),
  mounts: z.array(MountSchema),
  env_names: z.array(z.string()),
  credentials: z.array(CredentialRouteSchema),
  ssh: z.array(z.object({ Host: z.string(), IdentityFile: z.string() })),
  skills: z.array(z.object({ name: z.string(), source: z.string() })),
  prompt: z.string().nullable(),
  command: z.array(z.string()),
  args: z.array(z.string()),
  cwd: z.string(),
  copy_cwd: z.boolean(),
  /** The agent's limits: the manifest's, else the defaults (default-limits.ts); null in plans older than defaults. */
  limits: z.object({
    memory: z.string().nullable(),
    cpus: z.number().nullable(),
    pids: z.number().nullable(),
    /**
     * How much of the agent's transcript a snapshot copies onto the worker's host ("256m"); absent: the
     * default (src/effects/transcript-budget.ts), also in plans from before there was a limit.
     */
    transcript: z.string().optional(),
    /** The limits the manifest left out, filled with defaults. */
    defaulted: z.array(z.enum(['memory', 'cpus', 'pids'])).optional(),
    /**
     * How `pids` is enforced on this runtime (src/plan/pids-enforcement.ts): the agent user's RLIMIT_NPROC
     * inside gVisor (null under runc) and the container's pids cgroup. Absent in older plans; derived the same.
     */
    pids_enforcement: z.object({ nproc: z.number().nullable(), cgroup: z.number() }).optional(),
    /** The bottle's budget (manifest `limits.budget` or `start --budget`); absent: no limit. */
    budget: BudgetSchema.optional(),
  }),
  host: z.string(),
  manifest_path: z.string(),
  /** Which egress proxy enforces `hosts` (manifest egress.proxy; default gateway) and, for pipelock, its image. */
  egress: z
    .object({
      proxy: z.enum(['gateway', 'pipelock']),
      pipelock_image: z.string().nullable(),
      /** What the gateway does with a credential shape (manifest egress.dlp); absent in older plans: block. */
      dlp: z.enum(['block', 'audit']).optional(),
    })
    .optional(),
  /** This launch's decoy credentials (canaries.ts); absent in plans from before there were any. */
  canaries: CanariesSchema.optional(),
  /**
   * The user's shareable Claude Code preferences (src/plan/claude-state.ts says which), read on the
   * CLI's machine. Absent in plans from before, whose worker read its own machine's.
   */
  claude_preferences: z.object({ global: z.record(z.unknown()), settings: z.record(z.unknown()) }).optional(),
  /** Absent in plans from before uploads, whose worker read the CLI's paths on its own disk. */
  uploads: z.array(UploadSchema).optional(),
  /** Published once the agent runs (bottles[].ports, `start --publish`); absent in plans from before ports. */
  ports: z.array(PublishedPortSchema).optional(),
  /**
   * Claude Code Remote Control asked for (agents[].remote_control, `start --remote-control`) and the hosts it
   * would add; a launch refuses it (src/plan/remote-control.ts says why). Absent in plans from before.
   */
  remote_control: z.boolean().optional(),
  remote_control_hosts: z.array(z.string()).optional(),
});
export type BottlePlan = z.infer<typeof BottlePlanSchema>;
