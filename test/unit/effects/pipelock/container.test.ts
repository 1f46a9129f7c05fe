import { describe, expect, it } from 'vitest';
import { pipelockAgentEnvironment } from '../../../../src/effects/pipelock/agent-env.js';
import {
  PIPELOCK_CONFIG_PATH,
  pipelockContainerName,
  pipelockContainerSpec,
} from '../../../../src/effects/pipelock/pipelock-container.js';
import { CREDENTIAL_PLACEHOLDER, GATEWAY_CREDENTIAL_PORT } from '../../../../src/plan/agent-env.js';
import { LABELS } from '../../../../src/shared/names.js';
import { PermanentEffectError } from '../../../../src/effects/types.js';
import { fakePlan } from '../../../support/fake-plan.js';

const IMAGE = 'ghcr.io/luckypipewrench/pipelock:latest';
const plan = fakePlan('dev-abc12', {
  extra_hosts: { 'mirror.internal.test': 'host-gateway' },
  egress: { proxy: 'pipelock', pipelock_image: IMAGE },
});
const spec = pipelockContainerSpec(plan, IMAGE, '/var/lib/claude-bottle/state/dev-abc12/pipelock.yaml');

describe('pipelockContainerSpec', () => {
  it('has a deterministic per-bottle name and the bottle labels, so teardown finds it by identity', () => {
    expect(spec.name).toBe(pipelockContainerName('dev-abc12'));
    expect(spec.name).toBe('cb-dev-abc12-pipelock');
    expect(spec.Labels).toMatchObject({
      [LABELS.identity]: 'dev-abc12',
      [LABELS.agent]: 'dev',
      [LABELS.role]: 'pipelock',
    });
  });

  it('runs the given image with the documented run flags, listening where the config says', () => {
    expect(spec.Image).toBe(IMAGE);
    expect(spec.Cmd).toEqual(['run', '--config', PIPELOCK_CONFIG_PATH, '--listen', '0.0.0.0:8888']);
    expect(pipelockContainerSpec(plan, IMAGE, '/c.yaml', { listenPort: 3130 }).Cmd).toContain('0.0.0.0:3130');
  });

  it('drops every capability, forbids privilege gain, and runs as an unprivileged uid', () => {
    expect(spec.HostConfig?.CapDrop).toEqual(['ALL']);
    expect(spec.HostConfig?.CapAdd ?? []).toEqual([]);
    expect(spec.HostConfig?.SecurityOpt).toContain('no-new-privileges:true');
    expect(spec.HostConfig?.Privileged ?? false).toBe(false);
    expect(spec.User).toBe('65534:65534');
  });

  it('has a read-only root with only a small noexec tmpfs writable', () => {
    expect(spec.HostConfig?.ReadonlyRootfs).toBe(true);
    expect(spec.HostConfig?.Tmpfs).toEqual({ '/tmp': expect.stringMatching(/noexec/) });
  });

  it('mounts the generated config read-only and nothing else from the host (no Docker socket)', () => {
    expect(spec.HostConfig?.Binds).toEqual([
      '/var/lib/claude-bottle/state/dev-abc12/pipelock.yaml:/etc/pipelock/pipelock.yaml:ro',
    ]);
    expect(JSON.stringify(spec)).not.toContain('docker.sock');
    expect(spec.HostConfig?.Mounts ?? []).toEqual([]);
  });

  it('starts on the egress network only; the internal network is connected by the caller', () => {
    expect(spec.HostConfig?.NetworkMode).toBe(plan.networks.egress);
    expect(Object.keys(spec.NetworkingConfig?.EndpointsConfig ?? {})).toEqual([plan.networks.egress]);
  });

  it("carries no secret in its environment, which pipelock's scan_env would read", () => {
    expect(spec.Env).toEqual(['HOME=/tmp']);
  });

  it('resolves operator-pinned names the way the gateway does', () => {
    expect(spec.HostConfig?.ExtraHosts).toEqual(['mirror.internal.test:host-gateway']);
  });

  it('runs under runc with memory and process limits', () => {
    expect(spec.HostConfig?.Runtime).toBe('runc');
    expect(spec.HostConfig?.Memory).toBe(512 * 1024 ** 2);
    expect(spec.HostConfig?.PidsLimit).toBe(512);
  });

  it('refuses a relative or colon-bearing config path, which Docker would misread', () => {
    expect(() => pipelockContainerSpec(plan, IMAGE, 'pipelock.yaml')).toThrow(PermanentEffectError);
    expect(() => pipelockContainerSpec(plan, IMAGE, '/tmp/a:b.yaml')).toThrow(/":"/);
  });
});

describe('pipelockAgentEnvironment', () => {
  const withRoute = fakePlan('dev-abc12', {
    credentials: [
      {
        role: 'anthropic-base-url',
        upstream: 'https://api.anthropic.com',
        auth: 'oauth',
        token_source: 'env:CLAUDE_BOTTLE_OAUTH_TOKEN',
      },
    ],
  });
  const env = pipelockAgentEnvironment(withRoute, {
    pipelockIp: '172.30.0.4',
    gatewayIp: '172.30.0.3',
    sentinel: { host: '172.30.0.1', port: 9 },
  });

  it('sends plain egress through pipelock', () => {
    for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'])
      expect(env[name]).toBe('http://172.30.0.4:8888');
  });

  it('keeps credential routes and bottle-request on the gateway and out of pipelock', () => {
    expect(env.ANTHROPIC_BASE_URL).toBe(`http://172.30.0.3:${GATEWAY_CREDENTIAL_PORT}`);
    expect(env.CLAUDE_BOTTLE_GATEWAY_URL).toBe(`http://172.30.0.3:${GATEWAY_CREDENTIAL_PORT}`);
    expect(env.CLAUDE_CODE_OAUTH_TOKEN).toBe(CREDENTIAL_PLACEHOLDER);
    expect(env.NO_PROXY.split(',')).toContain('172.30.0.3');
    expect(env.no_proxy).toBe(env.NO_PROXY);
  });
});
