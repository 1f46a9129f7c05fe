import type { Redis } from 'ioredis';
import { EFFECT_KINDS, PermanentEffectError, type EffectHandler, type EffectKind } from '../../src/effects/types.js';

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

export function fakeEffects(opts: FakeEffectsOptions): Record<EffectKind, EffectHandler> {
  const failedOnce = new Set<string>();
  const wrap = (kind: EffectKind, body: EffectHandler): EffectHandler => async (req, ctx) => {
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
  const handlers: Partial<Record<EffectKind, EffectHandler>> = {
    prepare_state: async (req) => [{ type: 'bottle.prepared', data: { state_dir: `/tmp/fake/${req.identity}` } }],
    build_image: async (_req, ctx) => {
      ctx.progress('Step 1/1 : FROM debian:bookworm-slim');
      return [{ type: 'image.built', data: { tag: ctx.plan.image.tag, gateway_tag: ctx.plan.gateway_image.tag, cached: true } }];
    },
    create_networks: async (_req, ctx) => [{ type: 'network.created', data: { internal: ctx.plan.networks.internal, egress: ctx.plan.networks.egress } }],
    start_gateway: async (_req, ctx) => [{ type: 'gateway.started', data: { container: ctx.plan.containers.gateway, ip: '10.0.0.2' } }],
    start_agent: async (_req, ctx) => [{ type: 'agent.started', data: { container: ctx.plan.containers.agent, runtime: ctx.plan.runtime } }],
    watch_agent: async (req, ctx) => {
      await ctx.observe([{ type: 'egress.denied', data: { n: ctx.lastEgressDecision + 1, host: 'blocked.test', port: 443, method: 'CONNECT', reason: 'not_in_allowlist' } }]);
      for (;;) {
        if (ctx.signal.aborted) return [];
        const code = await opts.redis.get(exitKey(req.identity));
        if (code !== null) return [{ type: 'agent.exited', data: { code: Number(code), signal: Number(code) > 128 ? 'SIGKILL' : null } }];
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop_agent: async (req) => {
      await opts.redis.set(exitKey(req.identity), '143');
      return [];
    },
    snapshot_transcript: async () => [{ type: 'transcript.snapshotted', data: { files: 3, bytes: 120, missing: false } }],
    preserve: async (req) => [{ type: 'bottle.preserved', data: { reason: String(req.params.reason ?? 'crash'), resume_hint: `bottle resume ${req.identity}` } }],
    cleanup: async () => [{ type: 'bottle.cleaned', data: {} }],
    apply_capability: async (req) => [{ type: 'bottle.preserved', data: { reason: 'capability', resume_hint: `bottle resume ${req.identity}` } }],
    teardown_failed: async (req) => [{ type: 'bottle.failed', data: { effect: String(req.params.effect ?? 'unknown'), error: String(req.params.error ?? '') } }],
  };
  return Object.fromEntries(EFFECT_KINDS.map((k) => [k, wrap(k, handlers[k]!)])) as Record<EffectKind, EffectHandler>;
}
