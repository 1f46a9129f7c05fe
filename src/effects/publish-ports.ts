import type Docker from 'dockerode';
import type { EffectOutcome } from '../machines/effects.js';
import type { NetworkLayout } from '../machines/context.js';
import type { BottlePlan, PublishedPort } from '../plan/schema.js';
import { formatPortSpec } from '../shared/port-spec.js';
import { ensureContainer, startContainer } from './docker/containers.js';
import {
  awaitForwarderReady,
  forwarderContainerSpec,
  forwarderError,
  isAddressPoolFull,
  isPortTaken,
  removeForwarder,
} from './docker/port-forwarder.js';
import type { EffectDeps, EffectHandler } from './types.js';

const READY_TIMEOUT_MS = 15_000;
const MAX_ERROR_CHARS = 300;

class PublishRefused extends Error {}

/**
 * publish_ports: one forwarder container per port (src/effects/docker/port-forwarder.ts). Each port reports
 * `port.published` or `port.publish_failed`: a port that cannot be published (taken on the host, no address
 * left on the bottle's internal network) is the operator's to fix, never a reason to end the bottle.
 */
export const publishPorts =
  ({ docker }: EffectDeps): EffectHandler<'publish_ports'> =>
  async (req, ctx) => {
    const outcomes: EffectOutcome<'publish_ports'>[] = [];
    for (const port of req.params.ports) {
      try {
        if (!req.params.network) throw new PublishRefused('this bottle was launched without a known network layout');
        const container = await publishOne(docker, ctx.plan, req.params.network, port);
        outcomes.push({ type: 'port.published', data: { ...port, container } });
      } catch (err) {
        if (!(err instanceof PublishRefused)) throw err;
        outcomes.push({ type: 'port.publish_failed', data: { ...port, error: err.message.slice(0, MAX_ERROR_CHARS) } });
      }
    }
    return outcomes;
  };

/** The forwarder's name once it listens; a refusal (PublishRefused) leaves nothing behind. */
async function publishOne(
  docker: Docker,
  plan: BottlePlan,
  network: NetworkLayout,
  port: PublishedPort,
): Promise<string> {
  const spec = forwarderContainerSpec(plan, network, port);
  const name = spec.name!;
  const where = `${port.address}:${port.host_port}`;
  const { container, status } = await ensureContainer(docker, spec);
  if (status === 'running' && (await awaitForwarderReady(container, READY_TIMEOUT_MS))) return name;
  try {
    await connectInternal(docker, container.id, network.internal.name);
    await startContainer(container);
  } catch (err) {
    await removeForwarder(docker, name);
    if (isPortTaken(err)) throw new PublishRefused(`port ${where} is already in use on the host`);
    if (isAddressPoolFull(err))
      throw new PublishRefused(`no address left on the bottle's internal network for a forwarder of ${where}`);
    throw err;
  }
  if (!(await awaitForwarderReady(container, READY_TIMEOUT_MS))) {
    const why = await forwarderError(container);
    await removeForwarder(docker, name);
    throw new PublishRefused(`the forwarder of ${formatPortSpec(port)} did not start: ${why}`);
  }
  return name;
}

/** Joins the internal network at any free address, unless a retried attempt already did. */
async function connectInternal(docker: Docker, containerId: string, network: string): Promise<void> {
  const info = await docker.getContainer(containerId).inspect();
  if (info.NetworkSettings.Networks?.[network]) return;
  await docker.getNetwork(network).connect({ Container: containerId });
}
