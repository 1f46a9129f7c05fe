import type Docker from 'dockerode';
import type { BottlePlan } from '../../plan/schema.js';
import { planLimits } from '../../plan/default-limits.js';
import { bottleLabels } from '../../shared/names.js';
import { PermanentEffectError } from '../types.js';
import { statusOf } from './client.js';
import type { AgentLaunch } from './agent-init.js';
import {
  GATEWAY_DNS_PORT,
  GATEWAY_FILES_DIR,
  GATEWAY_LISTEN_ADDRESS_ENV,
  GATEWAY_UPSTREAM_CA_PATH,
} from '../../gateway/protocol.js';
import type { NetworkLayout } from '../../machines/context.js';

/**
 * The two containers of a bottle. Creation is idempotent: a container that
 * already exists under the bottle's deterministic name is reused, so a retried
 * effect never makes a second one.
 */

export const AGENT_UID = 1000;
/**
 * By number, never by name: an approved Dockerfile may rewrite /etc/passwd, and a name
 * (`node`) would then resolve to whatever uid that file says, root included.
 */
export const AGENT_USER = `${AGENT_UID}:${AGENT_UID}`;
export const GATEWAY_UID = 65534;

const MEMORY_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Docker-style sizes: "512m", "4g", "1.5g", "1024k", "2gb", or plain bytes. */
export function parseMemory(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$/i.exec(value);
  if (!m) throw new PermanentEffectError(`invalid memory limit ${JSON.stringify(value)}: use a size like 512m or 4g`);
  const bytes = Math.floor(Number(m[1]) * MEMORY_UNITS[m[2].toLowerCase()]);
  if (bytes < 6 * 1024 ** 2) throw new PermanentEffectError(`memory limit ${value} is below Docker's 6m minimum`);
  return bytes;
}

export function resourceLimits(
  limits: BottlePlan['limits'],
): Pick<Docker.HostConfig, 'Memory' | 'NanoCpus' | 'PidsLimit'> {
  return {
    ...(limits.memory ? { Memory: parseMemory(limits.memory) } : {}),
    ...(limits.cpus ? { NanoCpus: Math.round(limits.cpus * 1e9) } : {}),
    ...(limits.pids ? { PidsLimit: limits.pids } : {}),
  };
}

/**
 * The agent's memory, CPU and process limits, with the plan's defaults filled in (an older plan's
 * nulls get the same defaults). The pids limit is enforced as pids-enforcement.ts says for the
 * runtime: under gVisor as the agent user's RLIMIT_NPROC inside the sandbox, the cgroup a ceiling.
 */
export function agentResourceLimits(
  plan: Pick<BottlePlan, 'limits' | 'runtime'>,
): Pick<Docker.HostConfig, 'Memory' | 'NanoCpus' | 'PidsLimit' | 'Ulimits'> {
  const limits = planLimits(plan.limits, plan.runtime);
  const { nproc, cgroup } = limits.pids_enforcement;
  return {
    ...resourceLimits({ ...limits, pids: cgroup }),
    ...(nproc !== null ? { Ulimits: [{ Name: 'nproc', Soft: nproc, Hard: nproc }] } : {}),
  };
}

/**
 * Bind mounts for the agent: the planned binds, plus the cwd at its own path
 * unless it is copied in. As mounts, not `Binds`: the daemon refuses a source
 * missing on its host instead of creating an empty root-owned folder there.
 */
export function agentBinds(
  plan: BottlePlan,
): Array<{ Type: 'bind'; Source: string; Target: string; ReadOnly: boolean }> {
  const binds = plan.mounts
    .filter((m) => m.kind === 'bind')
    .map((m) => ({ Type: 'bind' as const, Source: m.source, Target: m.target, ReadOnly: m.readonly }));
  const cwdBound = plan.mounts.some((m) => m.kind === 'bind' && m.target === plan.cwd);
  if (!plan.copy_cwd && !cwdBound) binds.push({ Type: 'bind', Source: plan.cwd, Target: plan.cwd, ReadOnly: false });
  return binds;
}

export interface AgentContainerOptions {
  env: Record<string, string>;
  network: NetworkLayout;
  /** Image tag; defaults to plan.image.tag (a resumed bottle may run a rebuilt image). */
  image?: string;
  /** Defaults to AGENT_USER; tests that probe as root pass `0:0`. */
  user?: string;
  /** Runs the agent behind the init program (agent-init.ts); else the container runs plan.command as its image says. */
  launch?: AgentLaunch;
}

/**
 * The hardened agent container. Security-relevant choices, all pinned by the
 * isolation test:
 * - only the internal network (no forwarding off the bridge, which holds no host address);
 * - no capabilities, no-new-privileges, non-root;
 * - Dns is the gateway's internal address: Docker's embedded resolver (127.0.0.11)
 *   forwards names it does not know to the configured servers from inside the
 *   container's own namespace, so outside names reach the gateway, which refuses
 *   every one and records it (src/gateway/dns.ts): no query leaves the machine,
 *   and each attempt is an egress.denied event. The gateway is addressed by IP.
 * - no Docker socket, no Redis: nothing is mounted but the cwd.
 */
export function agentContainerSpec(plan: BottlePlan, opts: AgentContainerOptions): Docker.ContainerCreateOptions {
  const internal = opts.network.internal.name;
  return {
    name: plan.containers.agent,
    Image: opts.image ?? plan.image.tag,
    User: opts.user ?? AGENT_USER,
    ...(opts.launch ? { Entrypoint: opts.launch.entrypoint, Cmd: opts.launch.cmd } : { Cmd: plan.command }),
    WorkingDir: plan.cwd,
    Env: Object.entries(opts.env).map(([k, v]) => `${k}=${v}`),
    Tty: true,
    OpenStdin: true,
    StdinOnce: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Labels: bottleLabels(plan.identity, plan.agent, 'agent'),
    HostConfig: {
      NetworkMode: internal,
      Runtime: plan.runtime,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      Dns: [opts.network.addresses.gateway],
      // Lookups cannot succeed; fail them in about a second instead of glibc's default ~20 s.
      DnsOptions: ['timeout:1', 'attempts:1'],
      DnsSearch: [],
      Mounts: agentBinds(plan),
      // The agent may start before the gateway's interface exists; an address it asked for then
      // is asked for again after this, not after the kernel's default second.
      Sysctls: { 'net.ipv4.neigh.eth0.retrans_time_ms': '100' },
      ...agentResourceLimits(plan),
    },
    NetworkingConfig: {
      EndpointsConfig: { [internal]: { IPAMConfig: { IPv4Address: opts.network.addresses.agent } } },
    },
  };
}

export interface GatewayContainerOptions {
  network: NetworkLayout;
  image?: string;
  /** The worker's extra upstream roots are written to GATEWAY_UPSTREAM_CA_PATH: Node is told to add them. */
  upstreamCa?: boolean;
}

/** `name:value` pairs for Docker; `host-gateway` is passed through (Docker 20.10 resolves it to the host). */
export function gatewayExtraHosts(extraHosts: Record<string, string>): string[] {
  return Object.entries(extraHosts).map(([name, target]) => `${name}:${target}`);
}

/**
 * What an egress sidecar may use. One CPU: the gateway's work (proxying, TLS for host routes, DNS
 * refusals, recording) runs on one Node event loop, so a second core would only serve a flood from
 * the agent, which this keeps to one core of the host; the network watch, which only forwards
 * kernel log lines, has half.
 */
export const SIDECAR_LIMITS = { memory: '512m', cpus: 1, pids: 512 } as const;

/**
 * Hardening shared by the egress sidecars (the gateway, pipelock): runc, no
 * capabilities, no-new-privileges, read-only root with a small noexec /tmp,
 * bounded memory, CPU and pids, started on the egress network with the manifest's
 * extra_hosts (names are resolved for egress there, never in the agent).
 */
export function sidecarHostConfig(plan: BottlePlan, egressNetwork: string): Docker.HostConfig {
  return {
    NetworkMode: egressNetwork,
    Runtime: 'runc',
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges:true'],
    ReadonlyRootfs: true,
    Tmpfs: { '/tmp': 'rw,noexec,nosuid,size=16m' },
    ExtraHosts: gatewayExtraHosts(plan.extra_hosts),
    ...resourceLimits(SIDECAR_LIMITS),
  };
}

/**
 * The gateway sidecar: starts on the egress network and is then connected to
 * the internal one. It runs under runc, not gVisor: it is our own code, it
 * never executes anything the agent supplies, and it is the one container
 * that must speak to the outside network, which runsc here only offers in its
 * host-network mode. Its hardening is the container's own: no capabilities,
 * read-only root, unprivileged uid, no Docker socket.
 *
 * Config and secrets are written with one putArchive before start. A read-only
 * root refuses archive writes, so their folder is an anonymous volume
 * (removed with the container), owned by root: the gateway can read its files
 * but not change them.
 */
export function gatewayContainerSpec(plan: BottlePlan, opts: GatewayContainerOptions): Docker.ContainerCreateOptions {
  const egress = opts.network.egress.name;
  return {
    name: plan.containers.gateway,
    Image: opts.image ?? plan.gateway_image.tag,
    User: `${GATEWAY_UID}:${GATEWAY_UID}`,
    Tty: false,
    Labels: bottleLabels(plan.identity, plan.agent, 'gateway'),
    Volumes: { [GATEWAY_FILES_DIR]: {} },
    // Its agent-facing ports listen on this address only, never on the egress bridge the host reaches.
    Env: [
      `${GATEWAY_LISTEN_ADDRESS_ENV}=${opts.network.addresses.gateway}`,
      ...(opts.upstreamCa ? [`NODE_EXTRA_CA_CERTS=${GATEWAY_UPSTREAM_CA_PATH}`] : []),
    ],
    // The agent's DNS server (port 53) runs as the unprivileged gateway user.
    HostConfig: {
      ...sidecarHostConfig(plan, egress),
      Sysctls: { 'net.ipv4.ip_unprivileged_port_start': String(GATEWAY_DNS_PORT) },
    },
    NetworkingConfig: { EndpointsConfig: { [egress]: {} } },
  };
}

export interface ContainerState {
  container: Docker.Container;
  id: string;
  /** Docker's State.Status: created, running, exited, ... */
  status: string;
  created: boolean;
}

async function inspectByName(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Creates the container unless one with this name exists; 404 image / 400 config are permanent. */
export async function ensureContainer(docker: Docker, spec: Docker.ContainerCreateOptions): Promise<ContainerState> {
  const name = spec.name!;
  const existing = await inspectByName(docker, name);
  if (existing)
    return {
      container: docker.getContainer(existing.Id),
      id: existing.Id,
      status: existing.State.Status,
      created: false,
    };
  try {
    const container = await docker.createContainer(spec);
    return { container, id: container.id, status: 'created', created: true };
  } catch (err) {
    const status = statusOf(err);
    if (status === 409) {
      const raced = await inspectByName(docker, name);
      if (raced)
        return { container: docker.getContainer(raced.Id), id: raced.Id, status: raced.State.Status, created: false };
    }
    if (status === 404)
      throw new PermanentEffectError(`image ${spec.Image} is not available locally; build it first`, String(err));
    if (status === 400)
      throw new PermanentEffectError(`Docker refused the ${name} container configuration`, String(err));
    throw err;
  }
}

/** Connects the container to a network at a fixed address, unless it already is (a retried effect). */
export async function ensureConnected(
  docker: Docker,
  containerId: string,
  network: string,
  ipv4: string,
): Promise<void> {
  const info = await docker.getContainer(containerId).inspect();
  if (info.NetworkSettings.Networks?.[network]) return;
  try {
    await docker
      .getNetwork(network)
      .connect({ Container: containerId, EndpointConfig: { IPAMConfig: { IPv4Address: ipv4 } } });
  } catch (err) {
    // 403 "already exists in network" on a racing retry.
    const again = await docker.getContainer(containerId).inspect();
    if (!again.NetworkSettings.Networks?.[network]) throw err;
  }
}

/** Starts the container; "already started" (304) is fine. */
export async function startContainer(container: Docker.Container): Promise<void> {
  try {
    await container.start();
  } catch (err) {
    if (statusOf(err) !== 304) throw err;
  }
}

/** When Docker says the container's process started (State.StartedAt). */
export async function startedAt(container: Docker.Container): Promise<string> {
  return (await container.inspect()).State.StartedAt;
}
