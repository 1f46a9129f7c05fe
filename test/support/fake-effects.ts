import type { Redis } from 'ioredis';
import { requireNetwork } from '../../src/effects/errors.js';
import { PermanentEffectError, type EffectContext, type EffectHandlers } from '../../src/effects/types.js';
import type { NewEvent } from '../../src/events/schema.js';
import { EFFECT_KINDS, type EffectKind, type EffectRequest } from '../../src/machines/index.js';

/**
 * In-memory stand-in for the Docker side only (allowed by the engine issue):
 * each handler returns the events the real effect would. The agent's exit
 * code is read from a Redis key the test sets, so a watcher can block the
 * way a real container wait does, across worker restarts.
 */
export interface FakeEffectsOptions {
  redis: Redis;
  /** Effects that fail: 'transient' fails once then succeeds, 'permanent' always. */
  failures?: Partial<Record<EffectKind, 'transient' | 'permanent'>>;
  /** Extra delay inside an effect, to kill a worker mid-effect. */
  delays?: Partial<Record<EffectKind, number>>;
  calls?: Array<{ kind: EffectKind; identity: string }>;
}

export const exitKey = (identity: string) => `fake:exit:{${identity}}`;
/** Set to a sidecar's role to have the fake watch_sidecars report that sidecar's exit. */
export const sidecarExitKey = (identity: string) => `fake:sidecar-exit:{${identity}}`;

/** The networks the fake create_networks reports: fixed subnets and addresses, as the real pool hands out. */
export const FAKE_SUBNETS = { internal: '10.213.0.8/29', egress: '10.213.0.16/29' };
export const FAKE_ADDRESSES = { gateway: '10.213.0.10', agent: '10.213.0.11', pipelock: '10.213.0.12' };

/** Every handler of the effect table, each returning its effect's typed outcome events. */
function fakeHandlers(opts: FakeEffectsOptions): EffectHandlers {
  return {
    prepare_state: async (req) => [{ type: 'bottle.prepared', data: { state_dir: `/tmp/fake/${req.identity}` } }],
    build_image: async (_req, ctx) => {
      ctx.progress('Step 1/1 : FROM debian:bookworm-slim');
      const { image, gateway_image } = ctx.plan;
      return [{ type: 'image.built', data: { tag: image.tag, gateway_tag: gateway_image.tag, cached: true } }];
    },
    create_networks: async (_req, ctx) => {
      const { internal, egress } = ctx.plan.networks;
      const data = { internal, egress, subnets: FAKE_SUBNETS, addresses: FAKE_ADDRESSES };
      return [{ type: 'network.created', data }];
    },
    start_gateway: async (req, ctx) => {
      const { addresses } = requireNetwork(req.params.network);
      const data = { container: ctx.plan.containers.gateway, ip: addresses.gateway, legacy_launch: false };
      return [{ type: 'gateway.started', data }];
    },
    await_gateway_ready: async () => [{ type: 'gateway.ready', data: {} }],
    start_pipelock: async (req) => {
      const { addresses } = requireNetwork(req.params.network);
      const data = { container: `cb-${req.identity}-pipelock`, ip: addresses.pipelock };
      return [{ type: 'pipelock.started', data }];
    },
    start_agent: async (req, ctx) => {
      requireNetwork(req.params.network);
      return [{ type: 'agent.started', data: { container: ctx.plan.containers.agent, runtime: ctx.plan.runtime } }];
    },
    start_netwatch: async (req, ctx) => {
      requireNetwork(req.params.network);
      return [{ type: 'netwatch.started', data: { container: ctx.plan.containers.netwatch ?? 'none' } }];
    },
    watch_agent: async (req, ctx) => {
      const n = ctx.lastEgressDecision + 1;
      const denied = { n, host: 'blocked.test', port: 443, method: 'CONNECT', reason: 'not_in_allowlist' };
      await ctx.observe([{ type: 'egress.denied', data: denied }]);
      for (;;) {
        if (ctx.signal.aborted) return [];
        const code = await opts.redis.get(exitKey(req.identity));
        if (code !== null) {
          const signal = Number(code) > 128 ? 'SIGKILL' : null;
          return [{ type: 'agent.exited', data: { code: Number(code), signal } }];
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    watch_sidecars: async (req, ctx) => {
      for (;;) {
        if (ctx.signal.aborted || (await opts.redis.get(exitKey(req.identity))) !== null) return [];
        const role = await opts.redis.get(sidecarExitKey(req.identity));
        if (role === 'gateway' || role === 'netwatch') {
          const container = role === 'gateway' ? ctx.plan.containers.gateway : (ctx.plan.containers.netwatch ?? 'none');
          return [{ type: 'sidecar.exited', data: { role, container, code: 137, signal: 'SIGKILL' } }];
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop_agent: async (req) => {
      await opts.redis.set(exitKey(req.identity), '143');
      return [];
    },
    snapshot_transcript: async () => [
      { type: 'transcript.snapshotted', data: { files: 3, bytes: 120, missing: false } },
    ],
    preserve: async (req) => [
      { type: 'bottle.preserved', data: { reason: req.params.reason, resume_hint: `bottle resume ${req.identity}` } },
    ],
    cleanup: async () => [{ type: 'bottle.cleaned', data: {} }],
    discard: async () => [{ type: 'bottle.discarded', data: { images: [], images_kept: [] } }],
    apply_capability: async (req) => [
      { type: 'bottle.preserved', data: { reason: 'capability', resume_hint: `bottle resume ${req.identity}` } },
    ],
    answer_capability: async (req) => {
      const { request, decision } = req.params;
      if (decision === 'denied') {
        return [{ type: 'capability.answered', data: { request_id: request.request_id, decision, delivered: true } }];
      }
      const entry = request.host ?? 'unknown.test';
      return [
        { type: 'egress.granted', data: { request_id: request.request_id, entry, live: true } },
        { type: 'capability.answered', data: { request_id: request.request_id, decision, delivered: true } },
      ];
    },
    teardown_failed: async (req) => [
      { type: 'bottle.failed', data: { effect: req.params.effect, error: req.params.error } },
    ],
    apply_budget: async (req) => [{ type: 'budget.applied', data: { limit: req.params.limit, live: true } }],
    publish_ports: async (req) =>
      req.params.ports.map((port) => ({
        type: 'port.published' as const,
        data: { ...port, container: `cb-${req.identity}-port-${port.host_port}` },
      })),
    unpublish_port: async (req) => [
      { type: 'port.unpublished', data: { host_port: req.params.host_port, removed: true } },
    ],
  };
}

type AnyHandler = (req: EffectRequest, ctx: EffectContext) => Promise<NewEvent[]>;

export function fakeEffects(opts: FakeEffectsOptions): EffectHandlers {
  const failedOnce = new Set<string>();
  const handlers = fakeHandlers(opts);
  const wrap =
    (kind: EffectKind, body: AnyHandler): AnyHandler =>
    async (req, ctx) => {
      opts.calls?.push({ kind, identity: req.identity });
      const delay = opts.delays?.[kind];
      if (delay) await new Promise((r) => setTimeout(r, delay));
      const failure = opts.failures?.[kind];
      if (failure === 'permanent') throw new PermanentEffectError(`${kind} cannot succeed (fake)`);
      if (failure === 'transient' && !failedOnce.has(`${req.identity}.${kind}`)) {
        failedOnce.add(`${req.identity}.${kind}`);
        throw new Error(`${kind} hiccup (fake)`);
      }
      return body(req, ctx);
    };
  // Each wrapped handler keeps its kind's request and outcome types; the table is rebuilt kind by kind.
  return Object.fromEntries(EFFECT_KINDS.map((k) => [k, wrap(k, handlers[k] as AnyHandler)])) as EffectHandlers;
}
