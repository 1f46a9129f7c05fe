import { readGatewayReadyLine, waitForGatewayReady } from './docker/logs.js';
import type { EffectDeps, EffectHandler } from './types.js';

/**
 * await_gateway_ready: the gateway's ready line, which it prints once it
 * enforces its policy; with host credential routes it carries the CA the
 * agent must trust.
 */
export const awaitGatewayReady =
  ({ docker }: EffectDeps): EffectHandler<'await_gateway_ready'> =>
  async (_req, ctx) => {
    const gateway = docker.getContainer(ctx.plan.containers.gateway);
    await waitForGatewayReady(gateway, { signal: ctx.signal });
    const ready = await readGatewayReadyLine(gateway);
    return [{ type: 'gateway.ready', data: ready?.interception_ca ? { interception_ca: ready.interception_ca } : {} }];
  };
