import type Dockerode from 'dockerode';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GatewayConfigSchema, GatewaySecretsSchema, type GatewayConfigInput } from '../gateway/config.js';
import {
  agentEnvironment,
  AGENT_HOME,
  CA_BUNDLE_TARGET,
  GATEWAY_CA_TARGET,
  GATEWAY_CREDENTIAL_PORT,
  interceptsTls,
  GATEWAY_PROXY_PORT,
  PROMPT_TARGET,
  SKILLS_TARGET_DIR,
  SSH_TARGET_DIR,
  SYSTEM_CA_BUNDLE,
  TRANSCRIPT_TARGET,
} from '../plan/agent-env.js';
import type { BottlePlan } from '../plan/schema.js';
import { routeId } from '../shared/names.js';
import { statePaths } from '../shared/paths.js';
import { readContainerFile, snapshotDir } from './docker/archive.js';
import { statusOf } from './docker/client.js';
import {
  agentContainerSpec,
  containerIp,
  ensureConnected,
  ensureContainer,
  ensureCreatedWithEnv,
  gatewayContainerSpec,
  GATEWAY_CONFIG_PATH,
  GATEWAY_FILES_DIR,
  GATEWAY_SECRETS_PATH,
  GATEWAY_UID,
  startContainer,
  type ContainerState,
} from './docker/containers.js';
import { agentInitEntry, agentLaunch } from './docker/agent-init.js';
import { watchAttachment } from './docker/network-events.js';
import { ensureHostGuard } from './docker/host-guard.js';
import { agentImageSource, ensureImage, gatewayImageSource } from './docker/images.js';
import {
  drainGatewayDecisions,
  followGatewayDecisions,
  readGatewayReadyLine,
  waitForGatewayListening,
  waitForGatewayReady,
  type GatewayDecision,
} from './docker/logs.js';
import { ensureBottleNetworks, firstContainerAddress, inspectNetwork, type BottleNetworks } from './docker/networks.js';
import {
  cwdEntries,
  promptEntries,
  putEntries,
  skillEntries,
  sshEntries,
  transcriptEntries,
  trustEntries,
  type ArchiveEntry,
  type ProvisionTargets,
} from './docker/provision.js';
import { removeBottleResources } from './docker/teardown.js';
import { waitForAgentExit } from './docker/wait.js';
import { ObservationBatch } from './observation-batch.js';
import { pipelockEnvironment, startPipelock, usesPipelock } from './pipelock/launch.js';
import { markPreserved, prepareState, readMetadata, removeFileIfPresent, removeState } from './state.js';
import { PermanentEffectError, type EffectContext, type EffectHandler, type EffectKind, type EffectRequest, type NewEvent } from './types.js';

/**
 * The effect table: one handler per EffectKind, each idempotent (a retried
 * job finds what the first attempt made and carries on) and each returning
 * the lifecycle events that record its outcome.
 */

/** An agent container created and provisioned during the gateway's start, for the address the gateway was expected to get. */
interface EarlyAgent {
  container: Dockerode.Container;
  gatewayIp: string;
}

/** The agent's start begun during the gateway's; false when it failed (start_agent then retries it and reports why). */
interface EarlyStart {
  agent: EarlyAgent;
  started: Promise<boolean>;
}

const AGENT_TARGETS: ProvisionTargets = {
  home: AGENT_HOME,
  promptTarget: PROMPT_TARGET,
  skillsDir: SKILLS_TARGET_DIR,
  sshDir: SSH_TARGET_DIR,
  claudeDir: TRANSCRIPT_TARGET,
};

export const EGRESS_EXTRA_FILE = 'egress-extra.json';
const EgressExtraSchema = z.object({ hosts: z.array(z.string()).default([]) });

const CapabilityRequestSchema = z.object({
  kind: z.enum(['egress', 'dockerfile']),
  host: z.string().nullish(),
  port: z.number().int().nullish(),
  dockerfile: z.string().nullish(),
});

function resumeHint(identity: string): string {
  return `bottle resume ${identity}`;
}

/** Docker refusals that no retry can fix become permanent; everything else is left for the worker to retry. */
async function classifyDockerErrors<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PermanentEffectError) throw err;
    const status = statusOf(err);
    if (status === 400) throw new PermanentEffectError(`${what}: Docker refused the request`, String(err));
    if (status === 404 && /image/i.test(String((err as Error).message))) throw new PermanentEffectError(`${what}: image not found`, String(err));
    throw err;
  }
}

async function bottleNetworks(docker: Dockerode, plan: BottlePlan): Promise<BottleNetworks> {
  const [internal, egress] = await Promise.all([inspectNetwork(docker, plan.networks.internal), inspectNetwork(docker, plan.networks.egress)]);
  if (!internal || !egress) throw new Error(`bottle networks of ${plan.identity} are missing`);
  return { internal, egress };
}

/** The gateway's config: the allowlist, credential routes by id, and pinned names resolved to IPs. */
export function gatewayConfigFor(plan: BottlePlan, networks: BottleNetworks): GatewayConfigInput {
  const extraHosts = Object.fromEntries(
    Object.entries(plan.extra_hosts).map(([name, target]) => [name, target === 'host-gateway' ? networks.egress.gateway : target]),
  );
  return {
    identity: plan.identity,
    proxy_port: GATEWAY_PROXY_PORT,
    credential_port: GATEWAY_CREDENTIAL_PORT,
    allow: plan.hosts,
    extra_hosts: extraHosts,
    routes: plan.credentials.map((route, index) => ({
      id: routeId(index),
      ...(route.role ? { role: route.role } : {}),
      ...(route.host ? { host: route.host } : {}),
      ...(route.upstream ? { upstream: route.upstream } : {}),
      auth: route.auth,
      ...(route.header ? { header: route.header } : {}),
    })),
  };
}

function decisionEvent(decision: GatewayDecision): NewEvent {
  if (decision.t === 'egress') {
    return {
      type: decision.decision === 'allowed' ? 'egress.allowed' : 'egress.denied',
      // A request refused before its target was readable has no host/port/method.
      data: { n: decision.n, host: decision.host ?? '', port: decision.port ?? 0, method: decision.method ?? '', reason: decision.reason },
    };
  }
  return {
    type: 'capability.requested',
    data: {
      request_id: decision.request_id,
      kind: decision.kind,
      ...(decision.host !== null ? { host: decision.host } : {}),
      ...(decision.port !== null ? { port: decision.port } : {}),
      ...(decision.dockerfile !== null ? { dockerfile: decision.dockerfile } : {}),
      reason: decision.reason,
      queue_if_pending: true,
    },
  };
}

async function snapshotTranscript(docker: Dockerode, plan: BottlePlan): Promise<NewEvent> {
  const paths = statePaths(plan.identity);
  try {
    const result = await snapshotDir(docker, plan.containers.agent, TRANSCRIPT_TARGET, paths.transcript);
    const warning = result.refused > 0 ? `${result.refused} transcript entries were not copied (links or special files that could leave the state folder)` : undefined;
    return { type: 'transcript.snapshotted', data: { files: result.files, bytes: result.bytes, missing: result.missing, ...(warning ? { warning } : {}) } };
  } catch (err) {
    // No agent container (it never started, or a retry after teardown): nothing to copy, and the lifecycle must go on.
    if (statusOf(err) === 404) {
      return { type: 'transcript.snapshotted', data: { files: 0, bytes: 0, missing: true, warning: 'the agent container no longer exists' } };
    }
    throw err;
  }
}

function egressAllowEntry(host: string, port: number | null | undefined): string {
  return port && port !== 443 && port !== 80 ? `${host}:${port}` : host;
}

async function applyCapabilityChange(identity: string, params: Record<string, unknown>): Promise<void> {
  const request = CapabilityRequestSchema.safeParse(params.request ?? params);
  if (!request.success) throw new PermanentEffectError('capability request is missing its kind/host/dockerfile');
  const paths = statePaths(identity);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const { kind, host, port, dockerfile } = request.data;
  if (kind === 'dockerfile') {
    if (!dockerfile) throw new PermanentEffectError('dockerfile capability request carries no Dockerfile');
    await writeFile(paths.dockerfile, dockerfile.endsWith('\n') ? dockerfile : `${dockerfile}\n`, { mode: 0o644 });
    return;
  }
  if (!host) throw new PermanentEffectError('egress capability request carries no host');
  const extraPath = join(paths.dir, EGRESS_EXTRA_FILE);
  const existing = existsSync(extraPath) ? EgressExtraSchema.parse(JSON.parse(await readFile(extraPath, 'utf8'))) : { hosts: [] };
  const hosts = [...new Set([...existing.hosts, egressAllowEntry(host, port)])].sort();
  await writeFile(extraPath, JSON.stringify({ hosts }, null, 2) + '\n', { mode: 0o600 });
}

export function effectHandlers(deps: { docker: Dockerode }): Record<EffectKind, EffectHandler> {
  const { docker } = deps;

  const startGateway = async (_req: EffectRequest, ctx: EffectContext): Promise<NewEvent[]> => {
    const networks = await bottleNetworks(docker, ctx.plan);
    if (networks.internal.hostAddressless) return bootGateway(ctx, networks);
    // An internal network made by an earlier version (a launch retried across an upgrade) keeps its
    // host address; the iptables guard closes that path and must be in place before the agent starts.
    const guard = ensureHostGuard(docker, { identity: ctx.identity, bridge: networks.internal.bridge, image: ctx.plan.gateway_image.tag });
    const [events] = await Promise.all([bootGateway(ctx, networks), guard]);
    return events;
  };

  const bootGateway = async (ctx: EffectContext, networks: BottleNetworks): Promise<NewEvent[]> => {
    const { plan } = ctx;
    const config = GatewayConfigSchema.safeParse(gatewayConfigFor(plan, networks));
    if (!config.success) throw new PermanentEffectError(`gateway configuration is invalid: ${config.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);

    const gateway = await classifyDockerErrors('creating the gateway', () => ensureContainer(docker, gatewayContainerSpec(plan, { networks })));
    await ensureConnected(docker, gateway.id, networks.internal.name);
    // The gateway container takes a few hundred ms to start, and so does the agent's. The agent's
    // container is made ready meanwhile for the address the gateway is about to get, and started
    // as soon as the gateway holds an address: the two start-ups overlap. The agent's init program
    // holds its command back until the gateway accepts connections; start_agent checks the guess.
    const early = gateway.created && startsAlongsideGateway(plan, networks) ? prepareAgentEarly(plan, networks) : undefined;
    let earlyStart: EarlyStart | undefined;
    if (gateway.status === 'created') {
      const secretsPath = statePaths(plan.identity).secrets;
      const files: ArchiveEntry[] = [{ type: 'file', path: GATEWAY_CONFIG_PATH, mode: 0o444, uid: 0, gid: 0, content: JSON.stringify(config.data) }];
      let secretsJson: string | undefined;
      if (existsSync(secretsPath)) {
        const secrets = GatewaySecretsSchema.safeParse(JSON.parse(await readFile(secretsPath, 'utf8')));
        if (!secrets.success) throw new PermanentEffectError(`the secrets handed to the worker (${secretsPath}) are malformed`);
        secretsJson = JSON.stringify(secrets.data);
      } else if (gateway.created) {
        if (plan.credentials.length > 0) {
          throw new PermanentEffectError('the credential secrets for this launch are gone (already used by an earlier gateway); start or resume the bottle again');
        }
        secretsJson = '{}';
      }
      // A retry that finds the secrets already handed over rewrites only the config.
      if (secretsJson !== undefined) files.push({ type: 'file', path: GATEWAY_SECRETS_PATH, mode: 0o400, uid: GATEWAY_UID, gid: GATEWAY_UID, content: secretsJson });
      await putEntries(gateway.container, files, GATEWAY_FILES_DIR);
      // Secrets live in exactly one place once the gateway holds them.
      await removeFileIfPresent(secretsPath);
      earlyStart = await startGatewayWithAgent(gateway, networks, early);
    }
    // Pipelock is only put in front of a gateway that is fully up; otherwise its ports accepting
    // connections is enough here, and start_agent awaits the ready line.
    await (usesPipelock(plan) ? waitForGatewayReady : waitForGatewayListening)(gateway.container, { signal: ctx.signal });
    // With pipelock as the egress hop the gateway still serves the credential port.
    if (usesPipelock(plan)) await classifyDockerErrors('starting pipelock', () => startPipelock(docker, plan, networks, ctx.signal));
    const ip = await containerIp(docker, gateway.id, networks.internal.name);
    if (earlyStart && earlyStart.agent.gatewayIp !== ip && (await earlyStart.started)) {
      // Its init program is waiting on an address nobody serves; start_agent makes it anew.
      await earlyStart.agent.container.remove({ force: true });
    }
    return [{ type: 'gateway.started', data: { container: plan.containers.gateway, ip } }];
  };

  /**
   * Starts the gateway and, once Docker has given it its address on the internal network
   * (the first thing a start does), the agent prepared early; addresses are handed out in
   * order, so the agent cannot take the one it was told the gateway has. Resolves when the
   * gateway's start call returns, with the agent's start still running; undefined when no
   * agent was prepared.
   */
  const startGatewayWithAgent = async (gateway: ContainerState, networks: BottleNetworks, early: Promise<EarlyAgent | undefined> | undefined): Promise<EarlyStart | undefined> => {
    if (!early) {
      await startContainer(gateway.container);
      return undefined;
    }
    const attachment = await watchAttachment(docker, { network: networks.internal.name, container: gateway.id }).catch(() => undefined);
    const gatewayStart = startContainer(gateway.container);
    try {
      // Without the event stream only the overlap is lost: the start's return means the address is taken too.
      const started = gatewayStart.catch(() => undefined);
      await (attachment ? Promise.race([attachment.attached, started]) : started);
    } finally {
      attachment?.close();
    }
    const agent = await early;
    const started = agent ? startContainer(agent.container).then(() => true, () => false) : undefined;
    await gatewayStart;
    return agent && started ? { agent, started } : undefined;
  };

  /** Whether the agent may start before the gateway has finished starting (see bootGateway). */
  const startsAlongsideGateway = (plan: BottlePlan, networks: BottleNetworks): boolean =>
    // The agent's environment then names pipelock, which starts later; the interception CA is
    // only known from the gateway's ready line; a legacy network's host guard must come first.
    !usesPipelock(plan) && !interceptsTls(plan) && networks.internal.hostAddressless;

  /** Best effort: on any failure start_agent creates, provisions and starts the agent itself, and reports what went wrong. */
  const prepareAgentEarly = async (plan: BottlePlan, networks: BottleNetworks): Promise<EarlyAgent | undefined> => {
    const gatewayIp = firstContainerAddress(networks.internal);
    if (!gatewayIp) return undefined;
    try {
      const launch = await agentLaunch(docker, plan.image.tag, plan.command);
      const agent = await ensureContainer(docker, agentContainerSpec(plan, { env: agentEnvironment(plan, gatewayIp), networks, launch }));
      if (!agent.created) return undefined;
      await putEntries(agent.container, await agentEntries(plan));
      return { container: agent.container, gatewayIp };
    } catch {
      return undefined;
    }
  };

  /** Everything copied into the agent before it starts, but the interception trust (see start_agent). */
  const agentEntries = async (plan: BottlePlan): Promise<ArchiveEntry[]> => {
    const transcript = statePaths(plan.identity).transcript;
    const entries: ArchiveEntry[] = [agentInitEntry()];
    if (plan.prompt) entries.push(...(await promptEntries(plan.prompt, AGENT_TARGETS)));
    entries.push(...(await skillEntries(plan.skills, AGENT_TARGETS)));
    entries.push(...(await sshEntries(plan.ssh, AGENT_TARGETS)));
    // A resume restores the snapshot; so does a retried start that finds one (the folder only exists after a run).
    if (existsSync(transcript)) entries.push(...(await transcriptEntries(transcript, AGENT_TARGETS)));
    if (plan.copy_cwd) entries.push(...(await cwdEntries(plan.cwd)));
    return entries;
  };

  const startAgent = async (_req: EffectRequest, ctx: EffectContext): Promise<NewEvent[]> => {
    const { plan } = ctx;
    // Running means the gateway enforces the policy, not just holds its ports: its ready line
    // is awaited while the agent is created and started.
    const gatewayReady = waitForGatewayReady(docker.getContainer(plan.containers.gateway), { signal: ctx.signal });
    gatewayReady.catch(() => undefined); // awaited below; a failure must not surface as unhandled before then
    // A gateway that died after binding its ports has no address any more; its own last words say more.
    const gatewayAddress = containerIp(docker, plan.containers.gateway, plan.networks.internal).catch(async (err: unknown) => {
      await gatewayReady;
      throw err;
    });
    const [networks, gatewayIp, launch] = await Promise.all([
      bottleNetworks(docker, plan),
      gatewayAddress,
      classifyDockerErrors('inspecting the agent image', () => agentLaunch(docker, plan.image.tag, plan.command)),
    ]);
    const env = usesPipelock(plan) ? await pipelockEnvironment(docker, plan, networks, gatewayIp) : agentEnvironment(plan, gatewayIp);
    const spec = agentContainerSpec(plan, { env, networks, launch });
    // Replaces a container created early for an address the gateway did not get; one started
    // early (bootGateway) is found running and left as it is (Docker answers an inspect of a
    // container whose start is still under way only once that start is done).
    const agent = await classifyDockerErrors('creating the agent', () => ensureCreatedWithEnv(docker, spec));
    if (agent.status === 'created') {
      const entries = await agentEntries(plan);
      if (interceptsTls(plan)) {
        // The CA to trust is in the ready line.
        await gatewayReady;
        entries.push(...(await interceptionTrust(plan, agent.container)));
      }
      await classifyDockerErrors('provisioning the agent', () => putEntries(agent.container, entries));
      await classifyDockerErrors('starting the agent', () => startContainer(agent.container));
    }
    await gatewayReady;
    return [{ type: 'agent.started', data: { container: plan.containers.agent, runtime: plan.runtime } }];
  };

  /** The CA the gateway printed when it became ready, with the agent image's own bundle. */
  const interceptionTrust = async (plan: BottlePlan, agent: Dockerode.Container): Promise<ArchiveEntry[]> => {
    const ready = await readGatewayReadyLine(docker.getContainer(plan.containers.gateway));
    if (!ready?.interception_ca) {
      throw new PermanentEffectError('the gateway published no interception CA, so the agent could not use its host credential routes over HTTPS');
    }
    const systemBundle = await readContainerFile(agent, SYSTEM_CA_BUNDLE);
    return trustEntries(ready.interception_ca, systemBundle, { home: AGENT_HOME, caTarget: GATEWAY_CA_TARGET, bundleTarget: CA_BUNDLE_TARGET });
  };

  const watchAgent = async (_req: EffectRequest, ctx: EffectContext): Promise<NewEvent[]> => {
    const { plan } = ctx;
    const agent = docker.getContainer(plan.containers.agent);
    const gateway = docker.getContainer(plan.containers.gateway);
    // Highest decision recorded so far, whichever of follower or drain recorded it.
    let recorded = ctx.lastEgressDecision;
    const batch = new ObservationBatch<GatewayDecision>(async (decisions) => {
      await ctx.observe(decisions.map(decisionEvent));
      recorded = Math.max(recorded, ...decisions.map((d) => d.n));
    });
    const onLine = (decision: GatewayDecision) => batch.push(decision);
    const followerStop = new AbortController();
    const stopFollower = () => followerStop.abort();
    ctx.signal.addEventListener('abort', stopFollower, { once: true });
    // A follower failure (gateway gone) must not lose the agent's exit; the drain below catches up.
    const follower = followGatewayDecisions(docker, gateway, { sinceN: ctx.lastEgressDecision, signal: followerStop.signal, onLine }).catch(
      () => recorded,
    );
    try {
      const aborted = new Promise<'aborted'>((resolve) => {
        if (ctx.signal.aborted) resolve('aborted');
        ctx.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
      });
      const exit = await Promise.race([waitForAgentExit(docker, agent), aborted]);
      followerStop.abort();
      await follower;
      // Everything the follower saw is in the log before the drain decides what is new.
      await batch.flush();
      if (exit === 'aborted') return [];
      try {
        await drainGatewayDecisions(gateway, { sinceN: recorded, onLine });
      } catch (err) {
        if (statusOf(err) !== 404) throw err; // no gateway left: nothing more to drain
      }
      await batch.flush();
      return [{ type: 'agent.exited', data: { code: exit.code, signal: exit.signal } }];
    } finally {
      followerStop.abort();
      ctx.signal.removeEventListener('abort', stopFollower);
    }
  };

  return {
    prepare_state: async (_req, ctx) => [{ type: 'bottle.prepared', data: { state_dir: await prepareState(ctx.identity, ctx.plan) } }],

    build_image: async (_req, ctx) => {
      const { plan } = ctx;
      const paths = statePaths(ctx.identity);
      // The plan decides which Dockerfile the image comes from; a resumed plan names the per-bottle one,
      // whose build context is still the bottle's original folder (kept in metadata).
      const usesStateDockerfile = plan.image.dockerfile === paths.dockerfile;
      const baseDockerfile = usesStateDockerfile ? ((await readMetadata(ctx.identity))?.base_dockerfile ?? null) : plan.image.builtin ? null : plan.image.dockerfile;
      const agentSource = agentImageSource({
        dockerfile: baseDockerfile ?? undefined,
        stateDockerfile: usesStateDockerfile ? paths.dockerfile : undefined,
        bottle: plan.bottle,
      });
      const onProgress = (line: string) => ctx.progress(line);
      const agent = await ensureImage(docker, agentSource, plan.image, { onProgress });
      const gateway = await ensureImage(docker, gatewayImageSource(), plan.gateway_image, { onProgress });
      return [{ type: 'image.built', data: { tag: agent.tag, gateway_tag: gateway.tag, cached: agent.cached && gateway.cached } }];
    },

    create_networks: async (_req, ctx) => {
      const networks = await classifyDockerErrors('creating networks', () => ensureBottleNetworks(docker, ctx.identity, ctx.plan.agent));
      return [{ type: 'network.created', data: { internal: networks.internal.name, egress: networks.egress.name } }];
    },

    start_gateway: startGateway,
    start_agent: startAgent,
    watch_agent: watchAgent,

    stop_agent: async (_req, ctx) => {
      try {
        await docker.getContainer(ctx.plan.containers.agent).stop({ t: 10 });
      } catch (err) {
        // 304: already stopped; 404: already removed. The exit arrives through watch_agent either way.
        if (statusOf(err) !== 304 && statusOf(err) !== 404) throw err;
      }
      return [];
    },

    snapshot_transcript: async (_req, ctx) => [await snapshotTranscript(docker, ctx.plan)],

    preserve: async (req, ctx) => {
      await markPreserved(ctx.identity, String(req.params.reason ?? 'failure'));
      await removeBottleResources(docker, ctx.identity, { guardImage: ctx.plan.gateway_image.tag });
      return [{ type: 'bottle.preserved', data: { reason: req.params.reason, resume_hint: resumeHint(ctx.identity) } }];
    },

    cleanup: async (_req, ctx) => {
      await removeBottleResources(docker, ctx.identity, { guardImage: ctx.plan.gateway_image.tag });
      await removeState(ctx.identity);
      return [{ type: 'bottle.cleaned', data: {} }];
    },

    apply_capability: async (req, ctx) => {
      await applyCapabilityChange(ctx.identity, req.params);
      // Recorded like any other snapshot, so the log shows what the resume will restore.
      const snapshot = await snapshotTranscript(docker, ctx.plan);
      await markPreserved(ctx.identity, 'capability');
      await removeBottleResources(docker, ctx.identity, { guardImage: ctx.plan.gateway_image.tag });
      return [snapshot, { type: 'bottle.preserved', data: { reason: 'capability', resume_hint: resumeHint(ctx.identity) } }];
    },

    teardown_failed: async (req, ctx) => {
      // Marker first: if teardown itself fails, the state is still kept for a resume.
      await markPreserved(ctx.identity, 'failure');
      await removeBottleResources(docker, ctx.identity, { guardImage: ctx.plan.gateway_image.tag });
      return [{ type: 'bottle.failed', data: { effect: String(req.params.effect ?? 'unknown'), error: String(req.params.error ?? 'unknown') } }];
    },
  };
}
