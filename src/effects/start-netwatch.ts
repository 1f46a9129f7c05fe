import { GATEWAY_NETWATCH_TOKEN_PATH } from '../gateway/protocol.js';
import { NetwatchReadyLineSchema } from '../netwatch/protocol.js';
import { statusOf } from './docker/client.js';
import { ensureContainer, startContainer, startedAt } from './docker/containers.js';
import { readContainerFile } from './docker/archive.js';
import { waitForReadyLine } from './docker/logs.js';
import { classifyDockerErrors, requireNetwork } from './errors.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';
import { netwatchContainerSpec } from './netwatch/netwatch-container.js';

function isNetwatchReady(line: string): boolean {
  try {
    return NetwatchReadyLineSchema.safeParse(JSON.parse(line)).success;
  } catch {
    return false;
  }
}

/**
 * start_netwatch: the network watch, joined to the running agent's network
 * namespace, started and waited on until its refusal rules are in place and
 * it records. The token it signs its reports with is the one the gateway was
 * given at its start, read back from the gateway's files. An agent that has
 * already exited has no namespace left to join: that is recorded as skipped.
 */
export const startNetwatch =
  ({ docker }: EffectDeps): EffectHandler<'start_netwatch'> =>
  async (req, ctx) => {
    const { plan } = ctx;
    const name = plan.containers.netwatch;
    if (!name) throw new PermanentEffectError('this bottle was planned without a network watch');
    const network = requireNetwork(req.params.network);
    const agent = docker.getContainer(plan.containers.agent);
    const agentGone = async (): Promise<boolean> => {
      try {
        return !(await agent.inspect()).State.Running;
      } catch (err) {
        if (statusOf(err) === 404) return true;
        throw err;
      }
    };
    if (await agentGone()) return [{ type: 'netwatch.skipped', data: { reason: 'the agent had already exited' } }];

    const tokenFile = await readContainerFile(
      docker.getContainer(plan.containers.gateway),
      GATEWAY_NETWATCH_TOKEN_PATH,
    );
    const token = tokenFile?.toString('utf8').trim();
    if (!token) throw new PermanentEffectError('the gateway holds no network watch token');

    const watch = await classifyDockerErrors('creating the network watch', () =>
      ensureContainer(docker, netwatchContainerSpec(plan, network, name, token)),
    );
    try {
      if (watch.status === 'created') await startContainer(watch.container);
      await waitForReadyLine(watch.container, 'the network watch', isNetwatchReady, { signal: ctx.signal });
    } catch (err) {
      // Docker cannot join the namespace of a container that has stopped meanwhile.
      if (await agentGone()) return [{ type: 'netwatch.skipped', data: { reason: 'the agent exited meanwhile' } }];
      throw err;
    }
    return [{ type: 'netwatch.started', data: { container: name, started_at: await startedAt(watch.container) } }];
  };
