import { describe, expect, it } from 'vitest';
import { netwatchContainerSpec } from '../../../src/effects/netwatch/netwatch-container.js';
import { pipelockPlan, sampleNetwork, watchedPlan } from '../../golden/fixtures.js';
import { subnetAddresses } from '../../../src/shared/subnet-pool.js';

const ID = 'dev-a1b2c';
const TOKEN = 't'.repeat(64);

describe('the network watch container', () => {
  const plan = watchedPlan(ID);
  const network = sampleNetwork(plan);
  const spec = netwatchContainerSpec(plan, network, `cb-${ID}-netwatch`, TOKEN);

  it("joins the agent's network namespace only, under runc, from the sidecar image", () => {
    expect(spec.HostConfig?.NetworkMode).toBe(`container:${plan.containers.agent}`);
    expect(spec.HostConfig?.Runtime).toBe('runc');
    expect(spec.Image).toBe(plan.gateway_image.tag);
    expect(spec.NetworkingConfig).toBeUndefined();
  });

  it('starts with exactly the capabilities its setup needs, no new privileges, and a read-only root', () => {
    expect(spec.User).toBe('0:0');
    expect(spec.HostConfig?.CapDrop).toEqual(['ALL']);
    expect(spec.HostConfig?.CapAdd).toEqual(['NET_ADMIN', 'SETUID', 'SETGID']);
    expect(spec.HostConfig?.SecurityOpt).toEqual(['no-new-privileges:true']);
    expect(spec.HostConfig?.ReadonlyRootfs).toBe(true);
    expect(spec.HostConfig?.Memory).toBeGreaterThan(0);
    expect(spec.HostConfig?.PidsLimit).toBeGreaterThan(0);
  });

  it('lets the agent reach the gateway alone, and pipelock too when it is the egress hop', () => {
    expect(spec.Env).toContain(`NETWATCH_ALLOW=${network.addresses.gateway}`);
    expect(spec.Env).toContain(`NETWATCH_REPORT_TO=${network.addresses.gateway}:3131`);
    expect(spec.Env).toContain(`NETWATCH_TOKEN=${TOKEN}`);
    // The sentinel is the bottle network's own bridge address: the knock is aimed at nothing outside the bottle.
    expect(spec.Env).toContain(`NETWATCH_SENTINEL=${subnetAddresses(network.internal.subnet).bridge}:9`);
    const piped = { ...pipelockPlan(ID), containers: plan.containers };
    const pipedSpec = netwatchContainerSpec(piped, network, `cb-${ID}-netwatch`, TOKEN);
    expect(pipedSpec.Env).toContain(`NETWATCH_ALLOW=${network.addresses.gateway},${network.addresses.pipelock}`);
  });
});
