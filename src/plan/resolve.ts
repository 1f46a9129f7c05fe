import { mintCanaries } from './canaries.js';
import { shareablePreferences } from './claude-state.js';
import { basename } from 'node:path';
import type { ContainerRuntime } from '../shared/runtime.js';
import type { Agent, Bottle } from '../manifest/schema.js';
import { parseHostPattern } from '../shared/host-pattern.js';
import { mintIdentity, parseIdentity } from '../shared/identity.js';
import { resourceNames } from '../shared/names.js';
import { STATE_TRANSCRIPT } from '../shared/state-markers.js';
import { PROMPT_TARGET, SKILLS_TARGET_DIR, TRANSCRIPT_TARGET, agentEnvNames } from './agent-env.js';
import { DEFAULT_HOSTS } from './default-hosts.js';
import { planLimits } from './default-limits.js';
import { BottlePlanSchema, type BottlePlan, type CredentialRoute, type ImagePlan, type Mount } from './schema.js';

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
  facts: PlanFacts;
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
  const names = resourceNames(identity);

  const credentials = credentialRoutes(bottle);
  const skills = agent.skills.map((source) => ({ name: basename(source), source }));
  const ssh = bottle.ssh.map((entry) => ({ Host: entry.Host, IdentityFile: entry.IdentityFile }));
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
    hosts: mergeHosts(bottle.egress.allow, DEFAULT_HOSTS),
    default_hosts: [...DEFAULT_HOSTS].sort(),
    extra_hosts: { ...bottle.extra_hosts },
    mounts: planMounts({ cwd, copyCwd, prompt: agent.prompt, skills, transcript: opts.facts.restoresTranscript }),
    env_names: agentEnvNames({ credentials, ssh, containers }),
    credentials,
    ssh,
    skills,
    prompt: agent.prompt ?? null,
    command: agentCommand(agent, args),
    args,
    cwd,
    copy_cwd: copyCwd,
    limits: planLimits(bottle.limits, runtime),
    host: opts.facts.host,
    manifest_path: opts.manifestPath,
    egress: {
      proxy: bottle.egress.proxy,
      pipelock_image: bottle.egress.pipelock_image ?? null,
      dlp: bottle.egress.dlp,
    },
    canaries: mintCanaries(),
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

/**
 * The allowlist the gateway enforces: the bottle's entries plus the defaults,
 * normalised (lowercase, no trailing dot), sorted and deduplicated.
 */
export function mergeHosts(allow: readonly string[], defaults: readonly string[]): string[] {
  const normalised = [...allow, ...defaults].map((raw) => {
    const p = parseHostPattern(raw);
    const host = p.host.includes(':') ? `[${p.host}]` : p.host;
    return `${p.kind === 'subdomains' ? '*.' : ''}${host}${p.port === null ? '' : `:${p.port}`}`;
  });
  return [...new Set(normalised)].sort();
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
