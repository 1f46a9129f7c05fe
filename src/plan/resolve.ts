import { existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import type { ContainerRuntime } from '../shared/runtime.js';
import { agentImageSource, gatewayImageSource, imagePlan } from '../images/sources.js';
import { findAgent, type LoadedManifest } from '../manifest/load.js';
import type { Agent, Bottle } from '../manifest/schema.js';
import { parseHostPattern } from '../shared/host-pattern.js';
import { UsageError } from '../shared/errors.js';
import { mintIdentity, parseIdentity } from '../shared/identity.js';
import { resourceNames } from '../shared/names.js';
import { PROMPT_TARGET, SKILLS_TARGET_DIR, SSH_TARGET_DIR, TRANSCRIPT_TARGET, agentEnvNames } from './agent-env.js';
import { DEFAULT_HOSTS } from './default-hosts.js';
import { BottlePlanSchema, type BottlePlan, type CredentialRoute, type Mount } from './schema.js';

export interface ResolvePlanOptions {
  loaded: LoadedManifest;
  agent: string;
  cwd: string;
  /** `--copy-cwd`: can turn copying on for one start; the manifest's copy_cwd stays the default. */
  copyCwd?: boolean;
  args?: string[];
  /** Pinned by resume; fresh otherwise. */
  identity?: string;
  /** The runtime of the Docker host the bottle runs on (from its worker's heartbeat, or the daemon). */
  runtime: ContainerRuntime;
  /** A resumed bottle's per-bottle Dockerfile (state/<identity>/Dockerfile). */
  stateDockerfile?: string;
  /** A resumed bottle's transcript snapshot (state/<identity>/transcript), copied back into ~/.claude. */
  stateTranscript?: string;
}

/**
 * Resolves everything a launch needs from the manifest, the command line and
 * the daemon (runtime), without creating anything: `start --dry-run` prints
 * this, and `start` carries it in bottle.start_requested.
 */
export async function resolvePlan(opts: ResolvePlanOptions): Promise<BottlePlan> {
  const { agent, bottle } = findAgent(opts.loaded, opts.agent);
  const identity = opts.identity ? parseIdentity(opts.identity, [agent.name]).identity : mintIdentity(agent.name);
  const cwd = checkedCwd(opts.cwd);
  const copyCwd = Boolean(opts.copyCwd) || agent.copy_cwd;
  const args = opts.args ?? [];
  const names = resourceNames(identity);

  const agentSource = agentImageSource({ dockerfile: bottle.dockerfile, stateDockerfile: opts.stateDockerfile, bottle: bottle.name });
  const runtime = opts.runtime;
  const [image, gatewayImage] = await Promise.all([imagePlan(agentSource), imagePlan(gatewayImageSource())]);

  const credentials = credentialRoutes(bottle);
  const skills = agent.skills.map((source) => ({ name: basename(source), source }));
  const ssh = bottle.ssh.map((entry) => ({ Host: entry.Host, IdentityFile: entry.IdentityFile }));
  const plan: BottlePlan = {
    identity,
    agent: agent.name,
    bottle: bottle.name,
    image,
    gateway_image: gatewayImage,
    runtime,
    networks: { internal: names.internalNetwork, egress: names.egressNetwork },
    containers: { gateway: names.gatewayContainer, agent: names.agentContainer },
    hosts: mergeHosts(bottle.egress.allow, DEFAULT_HOSTS),
    default_hosts: [...DEFAULT_HOSTS].sort(),
    extra_hosts: { ...bottle.extra_hosts },
    mounts: planMounts({ cwd, copyCwd, prompt: agent.prompt, skills, ssh, transcript: opts.stateTranscript }),
    env_names: agentEnvNames({ credentials }),
    credentials,
    ssh,
    skills,
    prompt: agent.prompt ?? null,
    command: agentCommand(agent, args),
    args,
    cwd,
    copy_cwd: copyCwd,
    limits: { memory: bottle.limits.memory ?? null, cpus: bottle.limits.cpus ?? null, pids: bottle.limits.pids ?? null },
    host: hostname(),
    manifest_path: opts.loaded.path,
    egress: { proxy: bottle.egress.proxy, pipelock_image: bottle.egress.pipelock_image ?? null },
  };
  return BottlePlanSchema.parse(plan);
}

function checkedCwd(cwd: string): string {
  const abs = resolve(cwd);
  const s = statSync(abs, { throwIfNoEntry: false });
  if (!s) throw new UsageError(`working folder ${abs} does not exist; pass an existing folder with --cwd`);
  if (!s.isDirectory()) throw new UsageError(`working folder ${abs} is not a folder; pass a folder with --cwd`);
  return abs;
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

/**
 * Where each ssh key lands in the container: `~/.ssh/<file name>`, prefixed
 * with its index when two keys share a name (or a name ssh reserves). The
 * provisioning step (src/effects/docker/provision.ts) names them the same way.
 */
export function sshKeyTargets(ssh: ReadonlyArray<{ IdentityFile: string }>): string[] {
  const used = new Set<string>(['config', 'known_hosts']);
  return ssh.map((entry, i) => {
    let name = basename(entry.IdentityFile);
    if (used.has(name)) name = `${i}-${name}`;
    used.add(name);
    return `${SSH_TARGET_DIR}/${name}`;
  });
}

export function planMounts(input: {
  cwd: string;
  copyCwd: boolean;
  prompt?: string;
  skills: Array<{ name: string; source: string }>;
  ssh: Array<{ IdentityFile: string }>;
  transcript?: string;
}): Mount[] {
  // The folder appears at the same path inside, so paths in tool output and
  // Claude Code's per-project transcript key match the host.
  const mounts: Mount[] = [{ kind: input.copyCwd ? 'copy' : 'bind', source: input.cwd, target: input.cwd, readonly: false, purpose: 'cwd' }];
  if (input.transcript && existsSync(input.transcript)) {
    mounts.push({ kind: 'copy', source: input.transcript, target: TRANSCRIPT_TARGET, readonly: false, purpose: 'transcript' });
  }
  if (input.prompt) mounts.push({ kind: 'copy', source: input.prompt, target: PROMPT_TARGET, readonly: true, purpose: 'prompt' });
  for (const skill of input.skills) {
    mounts.push({ kind: 'copy', source: skill.source, target: `${SKILLS_TARGET_DIR}/${skill.name}`, readonly: true, purpose: 'skill' });
  }
  const targets = sshKeyTargets(input.ssh);
  input.ssh.forEach((entry, i) => {
    mounts.push({ kind: 'copy', source: entry.IdentityFile, target: targets[i], readonly: true, purpose: 'ssh' });
  });
  return mounts;
}

/** The agent's argv: its command, the system prompt flag when Claude Code gets a prompt, then `-- ARGS`. */
export function agentCommand(agent: Pick<Agent, 'command' | 'prompt'>, args: readonly string[]): string[] {
  const promptFlag = agent.prompt && basename(agent.command[0]) === 'claude' ? ['--append-system-prompt-file', PROMPT_TARGET] : [];
  return [...agent.command, ...promptFlag, ...args];
}
