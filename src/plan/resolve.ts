import { mintCanaries } from './canaries.js';
import { shareablePreferences } from './claude-state.js';
import { basename } from 'node:path';
import type { ContainerRuntime } from '../shared/runtime.js';
import type { Agent, AllowEntry, Bottle } from '../manifest/schema.js';
import { parseHostPattern } from '../shared/host-pattern.js';
import { mintIdentity, parseIdentity } from '../shared/identity.js';
import { resourceNames } from '../shared/names.js';
import { STATE_TRANSCRIPT } from '../shared/state-markers.js';
import { PROMPT_TARGET, SKILLS_TARGET_DIR, TRANSCRIPT_TARGET, agentEnvNames } from './agent-env.js';
import { buildHosts } from './build-hosts.js';
import { DEFAULT_HOSTS } from './default-hosts.js';
import { REMOTE_CONTROL_HOSTS } from './remote-control.js';
import { UsageError } from '../shared/errors.js';
import { mergePortSpecs, parsePortSpec, PortSpecError, type PortSpec } from '../shared/port-spec.js';
import { planLimits } from './default-limits.js';
import type { Budget, BudgetUnit } from '../shared/budget.js';
import { BUILTIN_PRICES, type PriceTable } from '../shared/prices.js';
import {
  BottlePlanSchema,
  type BottlePlan,
  type CredentialRoute,
  type EgressEntry,
  type ImagePlan,
  type Mount,
} from './schema.js';

/**
 * What a plan needs to know about the world, gathered by its caller (the
 * plan itself reads no file and asks no daemon): the host's runtime, the
 * image tags its build contexts hash to, the checked working folder.
 */
export interface PlanFacts {
  /** The runtime of the Docker host the bottle runs on (from its worker's heartbeat). */
  runtime: ContainerRuntime;
  /** The host the bottle is planned for. */
  host: string;
  /** The working folder as an absolute path, known to exist and to be a folder. */
  cwd: string;
  images: { agent: ImagePlan; gateway: ImagePlan };
  /** A resumed bottle whose log records a transcript snapshot: its worker copies it back into ~/.claude. */
  restoresTranscript?: boolean;
  /** The user's own Claude Code files on the CLI's machine, parsed; only their shareable preferences are kept. */
  userClaudeFiles?: { global: unknown; settings: unknown };
}

export interface ResolvePlanOptions {
  /** The manifest file, as loaded. */
  manifestPath: string;
  /** The agent to launch and its bottle, as the manifest defines them (see findAgent). */
  agent: Agent;
  bottle: Bottle;
  /** `--copy-cwd`: can turn copying on for one start; the manifest's copy_cwd stays the default. */
  copyCwd?: boolean;
  args?: string[];
  /** Pinned by resume; fresh otherwise. */
  identity?: string;
  /** `--budget`: replaces the manifest's `limits.budget` for this start. */
  budget?: { unit: BudgetUnit; amount: number };
  /** The prices a USD budget is counted at (the built-in table and the operator's file), fixed in the plan. */
  prices?: PriceTable;
  /** `start --publish`, added to the bottle's manifest ports. */
  publish?: PortSpec[];
  /** `start --remote-control`: turns it on for one start; the agent's remote_control stays the default. */
  remoteControl?: boolean;
  facts: PlanFacts;
}

/** The plan's budget: `--budget`, else the manifest's; a USD budget carries its prices. */
export function planBudget(opts: Pick<ResolvePlanOptions, 'budget' | 'prices' | 'bottle'>): Budget | undefined {
  const manifest = opts.bottle.limits.budget;
  const chosen =
    opts.budget ??
    (manifest === undefined
      ? undefined
      : 'tokens' in manifest
        ? { unit: 'tokens' as const, amount: manifest.tokens }
        : { unit: 'usd' as const, amount: manifest.usd });
  if (!chosen) return undefined;
  return {
    unit: chosen.unit,
    limit: chosen.amount,
    ...(chosen.unit === 'usd' ? { prices: opts.prices ?? { ...BUILTIN_PRICES } } : {}),
  };
}

/**
 * Resolves everything a launch needs from the manifest, the command line and
 * the facts gathered about the host, without creating anything: `start
 * --dry-run` prints this, and `start` carries it in bottle.start_requested.
 */
export function resolvePlan(opts: ResolvePlanOptions): BottlePlan {
  const { agent, bottle } = opts;
  const identity = opts.identity ? parseIdentity(opts.identity, [agent.name]).identity : mintIdentity(agent.name);
  const { cwd, runtime } = opts.facts;
  const copyCwd = Boolean(opts.copyCwd) || agent.copy_cwd;
  const args = opts.args ?? [];
  const budget = planBudget(opts);
  const names = resourceNames(identity);
  const remoteControl = Boolean(opts.remoteControl) || Boolean(agent.remote_control);

  const credentials = credentialRoutes(bottle);
  const skills = agent.skills.map((source) => ({ name: basename(source), source }));
  const ssh = bottle.ssh.map((entry) => ({ Host: entry.Host, IdentityFile: entry.IdentityFile }));
  const hosts = mergeHosts(bottle.egress.allow, DEFAULT_HOSTS);
  // Pipelock bottles send egress through pipelock, which inspects nothing here.
  const egress_entries = bottle.egress.proxy === 'gateway' ? egressEntries(hosts, bottle.egress.entries) : undefined;
  const containers = {
    gateway: names.gatewayContainer,
    agent: names.agentContainer,
    netwatch: names.netwatchContainer,
  };
  const plan: BottlePlan = {
    identity,
    agent: agent.name,
    bottle: bottle.name,
    image: opts.facts.images.agent,
    gateway_image: opts.facts.images.gateway,
    runtime,
    networks: { internal: names.internalNetwork, egress: names.egressNetwork },
    containers,
    hosts,
    ...(egress_entries ? { egress_entries } : {}),
    default_hosts: [...DEFAULT_HOSTS].sort(),
    build_hosts: buildHosts(hosts, opts.facts.images.agent.builtin),
    extra_hosts: { ...bottle.extra_hosts },
    mounts: planMounts({ cwd, copyCwd, prompt: agent.prompt, skills, transcript: opts.facts.restoresTranscript }),
    env_names: agentEnvNames({ credentials, ssh, containers, egress_entries }),
    credentials,
    ssh,
    skills,
    prompt: agent.prompt ?? null,
    command: agentCommand(agent, args),
    args,
    cwd,
    copy_cwd: copyCwd,
    limits: { ...planLimits(bottle.limits, runtime), ...(budget ? { budget } : {}) },
    host: opts.facts.host,
    manifest_path: opts.manifestPath,
    egress: {
      proxy: bottle.egress.proxy,
      pipelock_image: bottle.egress.pipelock_image ?? null,
      dlp: bottle.egress.dlp,
    },
    canaries: mintCanaries(),
    ports: plannedPorts(bottle, opts.publish ?? []),
    remote_control: remoteControl,
    remote_control_hosts: remoteControl ? [...REMOTE_CONTROL_HOSTS] : [],
    ...(opts.facts.userClaudeFiles
      ? {
          claude_preferences: {
            global: shareablePreferences(opts.facts.userClaudeFiles.global),
            settings: shareablePreferences(opts.facts.userClaudeFiles.settings),
          },
        }
      : {}),
  };
  return BottlePlanSchema.parse(plan);
}

/** The bottle's manifest ports and the command line's, one per host port; a clash is a usage error. */
function plannedPorts(bottle: Pick<Bottle, 'ports'>, publish: readonly PortSpec[]): PortSpec[] {
  try {
    return mergePortSpecs([...(bottle.ports ?? []).map(parsePortSpec), ...publish]);
  } catch (err) {
    if (err instanceof PortSpecError) throw new UsageError(`--publish: ${err.message}`);
    throw err;
  }
}

/**
 * The allowlist the gateway enforces: the bottle's entries plus the defaults,
 * normalised (lowercase, no trailing dot), sorted and deduplicated.
 */
export function mergeHosts(allow: readonly string[], defaults: readonly string[]): string[] {
  return [...new Set([...allow, ...defaults].map(normaliseHost))].sort();
}

function normaliseHost(raw: string): string {
  const p = parseHostPattern(raw);
  const host = p.host.includes(':') ? `[${p.host}]` : p.host;
  return `${p.kind === 'subdomains' ? '*.' : ''}${host}${p.port === null ? '' : `:${p.port}`}`;
}

/** An IPv6 address (the only patterns with ":" in their host) or a dotted IPv4 address. */
function isAddress(host: string): boolean {
  return host.includes(':') || /^[0-9.]+$/.test(host);
}

/**
 * Each allowed host's treatment: inspected unless its entry says `inspect: false` or it is an IP address
 * (the interception CA vouches for names only), with the entry's rules. The first entry for a host wins.
 */
export function egressEntries(hosts: readonly string[], entries: readonly AllowEntry[]): EgressEntry[] {
  const byHost = new Map<string, AllowEntry>();
  for (const entry of entries) {
    const host = normaliseHost(entry.host);
    if (!byHost.has(host)) byHost.set(host, entry);
  }
  return hosts.map((host) => {
    const entry = byHost.get(host);
    return {
      host,
      inspect: (entry?.inspect ?? true) && !isAddress(parseHostPattern(host).host),
      ...(entry?.methods ? { methods: entry.methods } : {}),
      ...(entry?.paths ? { paths: entry.paths } : {}),
    };
  });
}

/** Routes as the plan shows them: where the secret comes from, never the secret. */
export function credentialRoutes(bottle: Pick<Bottle, 'cred_proxy'>): CredentialRoute[] {
  return bottle.cred_proxy.routes.map((r) => ({
    ...(r.role ? { role: r.role } : {}),
    ...(r.host ? { host: r.host.toLowerCase() } : {}),
    upstream: r.upstream ?? (r.role ? 'https://api.anthropic.com' : `https://${r.host!.toLowerCase()}`),
    auth: r.auth,
    ...(r.header ? { header: r.header } : {}),
    token_source: r.token_env ? `env:${r.token_env}` : r.token_file ? `file:${r.token_file}` : 'command',
  }));
}

export function planMounts(input: {
  cwd: string;
  copyCwd: boolean;
  prompt?: string;
  skills: Array<{ name: string; source: string }>;
  transcript?: boolean;
}): Mount[] {
  // The folder appears at the same path inside, so paths in tool output and
  // Claude Code's per-project transcript key match the host.
  const mounts: Mount[] = [
    { kind: input.copyCwd ? 'copy' : 'bind', source: input.cwd, target: input.cwd, readonly: false, purpose: 'cwd' },
  ];
  if (input.transcript) {
    mounts.push({
      kind: 'copy',
      source: STATE_TRANSCRIPT,
      target: TRANSCRIPT_TARGET,
      readonly: false,
      purpose: 'transcript',
    });
  }
  if (input.prompt)
    mounts.push({ kind: 'copy', source: input.prompt, target: PROMPT_TARGET, readonly: true, purpose: 'prompt' });
  for (const skill of input.skills) {
    mounts.push({
      kind: 'copy',
      source: skill.source,
      target: `${SKILLS_TARGET_DIR}/${skill.name}`,
      readonly: true,
      purpose: 'skill',
    });
  }
  // SSH keys are not among them: the gateway holds them (plan/ssh-config.ts).
  return mounts;
}

/** The agent's argv: its command, the system prompt flag when Claude Code gets a prompt, then `-- ARGS`. */
export function agentCommand(agent: Pick<Agent, 'command' | 'prompt'>, args: readonly string[]): string[] {
  const promptFlag =
    agent.prompt && basename(agent.command[0]) === 'claude' ? ['--append-system-prompt-file', PROMPT_TARGET] : [];
  return [...agent.command, ...promptFlag, ...args];
}
