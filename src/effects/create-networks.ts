import { subnetAddresses, subnetPool, SubnetPoolError } from '../shared/subnet-pool.js';
import { ensureBottleNetworks } from './docker/networks.js';
import { classifyDockerErrors } from './errors.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';

/** create_networks: the internal and egress networks, each on a subnet of its own from the pool. */
export const createNetworks =
  ({ docker }: EffectDeps): EffectHandler<'create_networks'> =>
  async (_req, ctx) => {
    let pool;
    try {
      pool = subnetPool();
    } catch (err) {
      if (err instanceof SubnetPoolError) throw new PermanentEffectError(err.message);
      throw err;
    }
    const networks = await classifyDockerErrors('creating networks', () =>
      ensureBottleNetworks(docker, ctx.identity, ctx.plan.agent, pool),
    );
    const { gateway, agent, pipelock } = subnetAddresses(networks.internal.subnet);
    return [
      {
        type: 'network.created',
        data: {
          internal: networks.internal.name,
          egress: networks.egress.name,
          subnets: { internal: networks.internal.subnet, egress: networks.egress.subnet },
          addresses: { gateway, agent, pipelock },
        },
      },
    ];
  };
