import type Docker from 'dockerode';
import type { NetworkLayout } from '../../machines/context.js';
import {
  formatSentinel,
  NETWATCH_ENV,
  NETWATCH_PROGRAM,
  NETWATCH_REPORT_PORT,
  netwatchSentinel,
} from '../../netwatch/protocol.js';
import type { BottlePlan } from '../../plan/schema.js';
import { bottleLabels } from '../../shared/names.js';
import { resourceLimits } from '../docker/containers.js';
import { usesPipelock } from '../start-pipelock.js';

export const NETWATCH_ROLE = 'netwatch';

/** Where the agent may send on its internal network: its egress hops, nothing else. */
function allowedHops(plan: BottlePlan, network: NetworkLayout): string[] {
  return [network.addresses.gateway, ...(usesPipelock(plan) ? [network.addresses.pipelock] : [])];
}

/**
 * The network watch: a container of the sidecar image that joins the running
 * agent's network namespace (and nothing else of it: its own processes,
 * files and user). It starts as root with the capability to change that
 * namespace's firewall (CAP_NET_ADMIN, which also opens the netfilter log) and
 * to drop to an unprivileged user (SETUID, SETGID); its program installs the
 * refusal rules, starts the capture, and then gives up root and every
 * capability (src/netwatch/main.ts). runc, like the other sidecars: it is our
 * own code and runs nothing the agent supplies.
 *
 * Its report token reaches it in its environment: the agent shares its
 * network but not its processes, so cannot read it.
 */
export function netwatchContainerSpec(
  plan: BottlePlan,
  network: NetworkLayout,
  name: string,
  token: string,
): Docker.ContainerCreateOptions {
  return {
    name,
    Image: plan.gateway_image.tag,
    Entrypoint: ['node', NETWATCH_PROGRAM],
    Cmd: [],
    User: '0:0',
    Env: [
      `${NETWATCH_ENV.allow}=${allowedHops(plan, network).join(',')}`,
      `${NETWATCH_ENV.reportTo}=${network.addresses.gateway}:${NETWATCH_REPORT_PORT}`,
      `${NETWATCH_ENV.token}=${token}`,
      `${NETWATCH_ENV.sentinel}=${formatSentinel(netwatchSentinel(network.internal.subnet))}`,
    ],
    Tty: false,
    Labels: bottleLabels(plan.identity, plan.agent, NETWATCH_ROLE),
    HostConfig: {
      NetworkMode: `container:${plan.containers.agent}`,
      Runtime: 'runc',
      CapDrop: ['ALL'],
      CapAdd: ['NET_ADMIN', 'SETUID', 'SETGID'],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: true,
      // iptables takes its lock under /run.
      Tmpfs: { '/run': 'rw,noexec,nosuid,size=1m', '/tmp': 'rw,noexec,nosuid,size=1m' },
      // Bounded like the other sidecars, and in CPU too: a connect flood from the agent is work for it.
      ...resourceLimits({ memory: '128m', cpus: 0.5, pids: 32 }),
    },
  };
}
