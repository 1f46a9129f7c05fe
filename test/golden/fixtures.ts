import type { BottlePlan } from '../../src/plan/schema.js';
import { CURRENT_VERSION, parseEvent, type EventData, type EventType, type LifecycleEvent } from '../../src/events/schema.js';

/** A realistic launch plan for tests, shaped as the planner produces it. */
export function samplePlan(identity = 'dev-a1b2c', overrides: Partial<BottlePlan> = {}): BottlePlan {
  const agent = identity.replace(/-[0-9a-z]{5}$/, '');
  return {
    identity,
    agent,
    bottle: 'dev',
    image: {
      tag: 'claude-bottle/dev:3f9a1c2b7d4e8f60',
      context_hash: '3f9a1c2b7d4e8f6012ab34cd56ef7890',
      dockerfile: 'builtin:agent',
      builtin: true,
    },
    gateway_image: {
      tag: 'claude-bottle/gateway:9c1d2e3f4a5b6c7d',
      context_hash: '9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f',
      dockerfile: 'builtin:gateway',
      builtin: true,
    },
    runtime: 'runsc',
    networks: { internal: `cb-${identity}-internal`, egress: `cb-${identity}-egress` },
    containers: { gateway: `cb-${identity}-gateway`, agent: `cb-${identity}-agent` },
    hosts: ['api.anthropic.com:443', 'github.com:443', 'registry.npmjs.org:443'],
    default_hosts: ['api.anthropic.com:443'],
    extra_hosts: {},
    mounts: [{ kind: 'copy', source: '/home/user/prompts/implementer.md', target: '/home/node/prompt.md', readonly: true, purpose: 'prompt' }],
    env_names: ['ANTHROPIC_BASE_URL', 'CLAUDE_CODE_OAUTH_TOKEN'],
    credentials: [{ role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'oauth', token_source: 'env:CLAUDE_BOTTLE_OAUTH_TOKEN' }],
    ssh: [],
    skills: [],
    prompt: '/home/user/prompts/implementer.md',
    command: ['claude'],
    args: [],
    cwd: '/home/user/project',
    copy_cwd: false,
    limits: { memory: '4g', cpus: 2, pids: 1024 },
    host: 'buildhost',
    manifest_path: '/home/user/claude-bottle.json',
    ...overrides,
  };
}

export type Step = { [T in EventType]: [T, EventData<T>] }[EventType];

/** Stamps steps into a dense, validated history: seq 1.., one second apart from `start`. */
export function history(steps: Step[], start = Date.parse('2026-11-20T10:00:00.000Z'), firstSeq = 1): LifecycleEvent[] {
  return steps.map(([type, data], i) =>
    parseEvent({ seq: firstSeq + i, type, at: new Date(start + i * 1000).toISOString(), v: CURRENT_VERSION[type], data }),
  );
}

/** The steps from start_requested up to a running agent. */
export function launchSteps(identity = 'dev-a1b2c', plan = samplePlan(identity)): Step[] {
  return [
    ['bottle.start_requested', { plan }],
    ['bottle.prepared', { state_dir: `/home/user/.claude-bottle/state/${identity}` }],
    ['image.built', { tag: plan.image.tag, gateway_tag: plan.gateway_image.tag, cached: true }],
    ['network.created', { internal: plan.networks.internal, egress: plan.networks.egress }],
    ['gateway.started', { container: plan.containers.gateway, ip: '172.30.0.2' }],
    ['agent.started', { container: plan.containers.agent, runtime: plan.runtime }],
  ];
}
