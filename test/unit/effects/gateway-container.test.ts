import { describe, expect, it } from 'vitest';
import { gatewayContainerSpec } from '../../../src/effects/docker/containers.js';
import { GATEWAY_UPSTREAM_CA_PATH } from '../../../src/gateway/protocol.js';
import { samplePlan, sampleNetwork } from '../../golden/fixtures.js';

describe('the gateway container', () => {
  it('is bounded in CPU (one core), memory and pids, whatever the plan gives the agent', () => {
    const plan = samplePlan('dev-a1b2c', { limits: { memory: '64g', cpus: 16, pids: 100_000 } });
    const { HostConfig } = gatewayContainerSpec(plan, { network: sampleNetwork() });
    expect(HostConfig).toMatchObject({ NanoCpus: 1e9, Memory: 512 * 1024 ** 2, PidsLimit: 512, Runtime: 'runc' });
  });
});

describe('the worker’s extra upstream roots', () => {
  it('point Node at the file the worker writes, and only when the worker has some', () => {
    const plan = samplePlan('dev-a1b2c');
    const trusting = gatewayContainerSpec(plan, { network: sampleNetwork(), upstreamCa: true });
    expect(trusting.Env).toContain(`NODE_EXTRA_CA_CERTS=${GATEWAY_UPSTREAM_CA_PATH}`);
    const plain = gatewayContainerSpec(plan, { network: sampleNetwork() });
    expect(plain.Env?.some((e) => e.startsWith('NODE_EXTRA_CA_CERTS='))).toBe(false);
  });
});
