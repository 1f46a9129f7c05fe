import { portForwarderName } from '../shared/names.js';
import { removeForwarder } from './docker/port-forwarder.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** unpublish_port: removes the port's forwarder, which closes it on the host; repeating it is harmless. */
export const unpublishPort =
  ({ docker }: EffectDeps): EffectHandler<'unpublish_port'> =>
  async (req) => {
    const removed = await removeForwarder(docker, portForwarderName(req.identity, req.params.host_port));
    return [{ type: 'port.unpublished', data: { host_port: req.params.host_port, removed } }];
  };
