import type Docker from 'dockerode';
import type { NetworkLayout } from '../../machines/context.js';
import type { BottlePlan, PublishedPort } from '../../plan/schema.js';
import {
  FORWARDER_INTERNAL_SUBNET_ENV,
  FORWARDER_LISTEN_PORT,
  FORWARDER_PROGRAM,
  FORWARDER_READY,
  FORWARDER_TARGET_ENV,
} from '../../port-forwarder/protocol.js';
import { bottleLabels, portForwarderName } from '../../shared/names.js';
import { statusOf } from './client.js';
import { GATEWAY_UID, resourceLimits } from './containers.js';
import { isGone } from './remove-bottle.js';

/** A forwarder only copies bytes between two sockets. */
const FORWARDER_LIMITS = { memory: '64m', cpus: 0.5, pids: 64 } as const;

/**
 * The forwarder of one published port: created on the bottle's egress network (a normal bridge, where Docker
 * publishes `address:host_port` onto its listening port), then connected to the internal one to reach the
 * agent. Hardened like the other sidecars (runc, no capabilities, read-only root, unprivileged); it runs the
 * sidecar image's Node with the forwarder bundle.
 */
export function forwarderContainerSpec(
  plan: BottlePlan,
  network: NetworkLayout,
  port: PublishedPort,
): Docker.ContainerCreateOptions {
  const listen = `${FORWARDER_LISTEN_PORT}/tcp`;
  return {
    name: portForwarderName(plan.identity, port.host_port),
    Image: plan.gateway_image.tag,
    User: `${GATEWAY_UID}:${GATEWAY_UID}`,
    Entrypoint: ['node', FORWARDER_PROGRAM],
    Cmd: [],
    Tty: false,
    Env: [
      `${FORWARDER_TARGET_ENV}=${network.addresses.agent}:${port.bottle_port}`,
      `${FORWARDER_INTERNAL_SUBNET_ENV}=${network.internal.subnet}`,
    ],
    ExposedPorts: { [listen]: {} },
    Labels: bottleLabels(plan.identity, plan.agent, 'port-forwarder'),
    HostConfig: {
      NetworkMode: network.egress.name,
      Runtime: 'runc',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: true,
      PortBindings: { [listen]: [{ HostIp: port.address, HostPort: String(port.host_port) }] },
      ...resourceLimits(FORWARDER_LIMITS),
    },
    NetworkingConfig: { EndpointsConfig: { [network.egress.name]: {} } },
  };
}

/** Docker's words for a host port something else holds. */
export function isPortTaken(err: unknown): boolean {
  return /port is already allocated|address already in use|bind for .* failed/i.test(
    err instanceof Error ? err.message : String(err),
  );
}

/** Docker's words when the internal subnet has no address left for one more forwarder. */
export function isAddressPoolFull(err: unknown): boolean {
  return /no available ip|no available addresses|ipam.*exhausted/i.test(
    err instanceof Error ? err.message : String(err),
  );
}

/** Removes a forwarder; false when there was none. */
export async function removeForwarder(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getContainer(name).remove({ force: true });
    return true;
  } catch (err) {
    if (isGone(err)) return false;
    throw err;
  }
}

/** Whether the forwarder printed its ready line (it listens on every host-side address) within `ms`. */
export async function awaitForwarderReady(container: Docker.Container, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const info = await container.inspect();
    if (!info.State.Running && info.State.Status !== 'created') return false;
    const logs = await container.logs({ stdout: true, stderr: false, follow: false });
    if (logs.toString('utf8').includes(FORWARDER_READY)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Its last stderr lines, to say why it did not start. */
export async function forwarderError(container: Docker.Container): Promise<string> {
  try {
    const logs = await container.logs({ stdout: false, stderr: true, follow: false, tail: 5 });
    // Multiplexed frames carry 8-byte headers; keep the printable text only.
    return (
      logs
        .toString('utf8')
        .replace(/[^\x20-\x7e\n]/g, '')
        .trim() || 'it exited without saying why'
    );
  } catch (err) {
    return statusOf(err) === 404 ? 'it is gone' : String(err);
  }
}
