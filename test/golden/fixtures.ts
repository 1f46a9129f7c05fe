import type { BottlePlan } from '../../src/plan/schema.js';
import {
  CURRENT_VERSION,
  parseEvent,
  type EventData,
  type EventType,
  type LifecycleEvent,
} from '../../src/events/schema.js';
import type { NetworkLayout } from '../../src/machines/index.js';

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
    mounts: [
      {
        kind: 'copy',
        source: '/home/user/prompts/implementer.md',
        target: '/home/node/prompt.md',
        readonly: true,
        purpose: 'prompt',
      },
    ],
    env_names: ['ANTHROPIC_BASE_URL', 'CLAUDE_CODE_OAUTH_TOKEN'],
    credentials: [
      {
        role: 'anthropic-base-url',
        upstream: 'https://api.anthropic.com',
        auth: 'oauth',
        token_source: 'env:CLAUDE_BOTTLE_OAUTH_TOKEN',
      },
    ],
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

/** A plan whose egress goes through pipelock, which the launch starts as a container of its own. */
export function pipelockPlan(identity = 'dev-a1b2c'): BottlePlan {
  return samplePlan(identity, { egress: { proxy: 'pipelock', pipelock_image: null } });
}

/** A plan as the planner makes it since the network watch: it names the watch's container. */
export function watchedPlan(identity = 'dev-a1b2c'): BottlePlan {
  const plan = samplePlan(identity);
  return {
    ...plan,
    containers: { ...plan.containers, netwatch: `cb-${identity}-netwatch` },
    env_names: [...plan.env_names, 'CLAUDE_BOTTLE_NETWATCH_SENTINEL'],
  };
}

/** A plan with a host credential route: its agent must trust the CA the gateway makes at its start. */
export function hostRoutePlan(identity = 'dev-a1b2c'): BottlePlan {
  const plan = samplePlan(identity);
  const github = { host: 'api.github.com', auth: 'bearer' as const, token_source: 'env:GITHUB_TOKEN' };
  return { ...plan, credentials: [...plan.credentials, github] };
}

/** A plan with a budget (manifest `limits.budget`), as the planner records it. */
export function budgetPlan(identity: string, budget: NonNullable<BottlePlan['limits']['budget']>): BottlePlan {
  const plan = samplePlan(identity);
  return { ...plan, limits: { ...plan.limits, budget } };
}

export type Step = { [T in EventType]: [T, EventData<T>] }[EventType];

/** An event as an older claude-bottle stored it: kept at its version `v`, upcast when `history` parses it. */
export interface StoredStep {
  type: EventType;
  v: number;
  data: Record<string, unknown>;
}

export const stored = (type: EventType, v: number, data: Record<string, unknown>): StoredStep => ({ type, v, data });

/** Stamps steps into a dense, validated history: seq 1.., one second apart from `start`. */
export function history(
  steps: Array<Step | StoredStep>,
  start = Date.parse('2026-11-20T10:00:00.000Z'),
  firstSeq = 1,
): LifecycleEvent[] {
  return steps.map((step, i) => {
    const { type, v, data } = Array.isArray(step)
      ? { type: step[0], v: CURRENT_VERSION[step[0]], data: step[1] }
      : step;
    return parseEvent({ seq: firstSeq + i, type, at: new Date(start + i * 1000).toISOString(), v, data });
  });
}

/** The networks and fixed addresses the sample launch is given, as the machine keeps them. */
export function sampleNetwork(plan = samplePlan()): NetworkLayout {
  return {
    internal: { name: plan.networks.internal, subnet: '10.213.0.8/29' },
    egress: { name: plan.networks.egress, subnet: '10.213.0.16/29' },
    addresses: { gateway: '10.213.0.10', agent: '10.213.0.11', pipelock: '10.213.0.12' },
  };
}

/** network.created as the current create_networks effect reports it. */
export function networkCreated(plan = samplePlan()): Step {
  const { internal, egress, addresses } = sampleNetwork(plan);
  const subnets = { internal: internal.subnet, egress: egress.subnet };
  return ['network.created', { internal: internal.name, egress: egress.name, subnets, addresses }];
}

/** The steps from start_requested up to created networks, where the parallel launch begins. */
export function preLaunchSteps(identity = 'dev-a1b2c', plan = samplePlan(identity)): Step[] {
  return [
    ['bottle.start_requested', { plan }],
    ['bottle.prepared', { state_dir: `/home/user/.claude-bottle/state/${identity}` }],
    ['image.built', { tag: plan.image.tag, gateway_tag: plan.gateway_image.tag, cached: true }],
    networkCreated(plan),
  ];
}

export const gatewayStarted = (plan = samplePlan()): Step => [
  'gateway.started',
  { container: plan.containers.gateway, ip: sampleNetwork(plan).addresses.gateway, legacy_launch: false },
];
export const pipelockStarted = (plan = samplePlan()): Step => [
  'pipelock.started',
  { container: `cb-${plan.identity}-pipelock`, ip: sampleNetwork(plan).addresses.pipelock },
];
export const agentStarted = (plan = samplePlan()): Step => [
  'agent.started',
  { container: plan.containers.agent, runtime: plan.runtime },
];
export const netwatchStarted = (plan = watchedPlan()): Step => [
  'netwatch.started',
  { container: plan.containers.netwatch ?? `cb-${plan.identity}-netwatch` },
];

/**
 * The steps from start_requested up to a running agent, each start reported by
 * its own effect: the gateway (then its ready line), pipelock when the plan
 * uses it, then the agent, and the network watch when the plan names one.
 */
export function launchSteps(identity = 'dev-a1b2c', plan = samplePlan(identity)): Step[] {
  return [
    ...preLaunchSteps(identity, plan),
    gatewayStarted(plan),
    ...(plan.egress?.proxy === 'pipelock' ? [pipelockStarted(plan)] : []),
    ['gateway.ready', {}],
    agentStarted(plan),
    ...(plan.containers.netwatch ? [netwatchStarted(plan)] : []),
  ];
}

/**
 * The same launch as logs written before the parallel launch store it: networks
 * without subnets, and a v1 gateway.started from the one effect that also
 * started pipelock and waited for the gateway's ready line.
 */
export function legacyLaunchSteps(identity = 'dev-a1b2c', plan = samplePlan(identity)): Array<Step | StoredStep> {
  return [
    ...preLaunchSteps(identity, plan).slice(0, 3),
    ['network.created', { internal: plan.networks.internal, egress: plan.networks.egress }],
    stored('gateway.started', 1, { container: plan.containers.gateway, ip: '172.30.0.2' }),
    agentStarted(plan),
  ];
}
