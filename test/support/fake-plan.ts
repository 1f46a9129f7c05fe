import { hostname } from 'node:os';
import { BottlePlanSchema, type BottlePlan } from '../../src/plan/schema.js';
import { resourceNames } from '../../src/shared/names.js';

/** A complete, valid plan for engine tests that never reach Docker. */
export function fakePlan(identity: string, overrides: Partial<BottlePlan> = {}): BottlePlan {
  const agent = identity.replace(/-[0-9a-z]{5}$/, '');
  const names = resourceNames(identity);
  return BottlePlanSchema.parse({
    identity,
    agent,
    bottle: 'dev',
    image: {
      tag: 'claude-bottle/agent:0123456789abcdef',
      context_hash: '0'.repeat(64),
      dockerfile: 'builtin:agent',
      builtin: true,
    },
    gateway_image: {
      tag: 'claude-bottle/gateway:0123456789abcdef',
      context_hash: '1'.repeat(64),
      dockerfile: 'builtin:gateway',
      builtin: true,
    },
    runtime: 'runc',
    networks: { internal: names.internalNetwork, egress: names.egressNetwork },
    containers: { gateway: names.gatewayContainer, agent: names.agentContainer },
    hosts: ['api.anthropic.com'],
    default_hosts: ['api.anthropic.com'],
    extra_hosts: {},
    mounts: [],
    env_names: ['HTTPS_PROXY'],
    credentials: [],
    ssh: [],
    skills: [],
    prompt: null,
    command: ['claude'],
    args: [],
    cwd: '/tmp',
    copy_cwd: false,
    limits: { memory: null, cpus: null, pids: null },
    // The host a test's worker serves by default (its machine's name), so the bottle's effects reach it.
    host: hostname(),
    manifest_path: '/tmp/claude-bottle.json',
    ...overrides,
  });
}
