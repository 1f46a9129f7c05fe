import type { DecisionLine } from '../gateway/protocol.js';
import type { ObservationEvent } from '../machines/effects.js';
import { statusOf } from './docker/client.js';
import { askGatewayForReports } from './docker/gateway-reports.js';
import { drainDecisionLines, followDecisionLines } from './docker/logs.js';
import { waitForAgentExit, type AgentExit } from './docker/wait.js';
import { canaryAlarm } from './egress-alarm.js';
import { ObservationBatch } from './observation-batch.js';
import type { EffectDeps, EffectHandler } from './types.js';

const OBSERVATION_OF_DECISION = {
  allowed: 'egress.allowed',
  denied: 'egress.denied',
  audited: 'egress.audited',
} as const;

/** A gateway decision line as the observation event it becomes. */
export function decisionEvent(decision: DecisionLine): ObservationEvent {
  if (decision.t === 'egress') {
    const type = OBSERVATION_OF_DECISION[decision.decision];
    // A request refused before its target was readable has no host/port/method.
    const { n, host = '', port = 0, method = '', reason, detail } = decision;
    return { type, data: { n, host, port, method, reason, ...(detail !== undefined ? { detail } : {}) } };
  }
  if (decision.t === 'summary') {
    const { n, hosts, pending } = decision;
    return { type: 'egress.summary', data: { n, hosts, pending } };
  }
  if (decision.t === 'usage') return { type: 'usage.recorded', data: { n: decision.n, models: decision.models } };
  if (decision.t === 'status') {
    const { n, kind = 'question', message = '' } = decision;
    return decision.state === 'working'
      ? { type: 'agent.working', data: { n } }
      : { type: 'agent.attention', data: { n, kind, message } };
  }
  const { request_id, kind, host, port, dockerfile, reason, methods, paths } = decision;
  return {
    type: 'capability.requested',
    data: {
      request_id,
      kind,
      ...(host !== undefined ? { host } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(dockerfile !== undefined ? { dockerfile } : {}),
      reason,
      ...(methods !== undefined ? { methods } : {}),
      ...(paths !== undefined ? { paths } : {}),
      queue_if_pending: true,
    },
  };
}

/**
 * The exit recorded for an agent whose container is gone (removed while its
 * worker was down, or its daemon lost it). Its status is unknown, which no
 * process status can be mistaken for (-1, no signal), so the bottle takes the
 * crash path and keeps its state for a resume.
 */
function vanishedExit(err: unknown): AgentExit {
  if (statusOf(err) !== 404) throw err;
  return { code: -1, signal: null };
}

/**
 * watch_agent: waits for the agent to exit, recording the gateway's decisions
 * as observations meanwhile; after the exit, the gateway is asked for what
 * its rate bounds still hold (traffic counters, token usage) and one drain
 * picks up every line the follower had not seen yet, so the log holds them
 * all before agent.exited.
 * A wait on a container whose daemon was killed may never settle (the daemon
 * has sent its answer's headers already), so the watch also ends when the
 * worker's probe finds the daemon gone; the worker then waits for the daemon
 * and watches again.
 */
export const watchAgent =
  ({ docker }: EffectDeps): EffectHandler<'watch_agent'> =>
  async (_req, ctx) => {
    const { plan } = ctx;
    const agent = docker.getContainer(plan.containers.agent);
    const gateway = docker.getContainer(plan.containers.gateway);
    // Highest decision recorded so far, whichever of follower or drain recorded it.
    let recorded = ctx.lastEgressDecision;
    const batch = new ObservationBatch<DecisionLine>(async (decisions) => {
      await ctx.observe([...decisions.map(decisionEvent), ...canaryAlarm(decisions)]);
      recorded = Math.max(recorded, ...decisions.map((d) => d.n));
    });
    const onLine = (decision: DecisionLine) => batch.push(decision);
    const followerStop = new AbortController();
    const stopFollower = () => followerStop.abort();
    ctx.signal.addEventListener('abort', stopFollower, { once: true });
    // A follower failure (gateway gone) must not lose the agent's exit; the drain below catches up.
    const follower = followDecisionLines(docker, gateway, {
      sinceN: ctx.lastEgressDecision,
      signal: followerStop.signal,
      onLine,
    }).catch(() => recorded);
    try {
      const aborted = new Promise<'aborted'>((resolve) => {
        if (ctx.signal.aborted) resolve('aborted');
        ctx.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
      });
      const exited = waitForAgentExit(docker, agent).catch(vanishedExit);
      const daemonLost = ctx.daemon?.lost(followerStop.signal) ?? new Promise<never>(() => undefined);
      const exit = await Promise.race([exited, aborted, daemonLost]);
      followerStop.abort();
      await follower;
      // Everything the follower saw is in the log before the drain decides what is new.
      await batch.flush();
      if (exit === 'aborted') return [];
      try {
        await askGatewayForReports(gateway);
        await drainDecisionLines(gateway, { sinceN: recorded, onLine });
      } catch (err) {
        if (statusOf(err) !== 404) throw err; // no gateway left: nothing more to drain
      }
      await batch.flush();
      return [{ type: 'agent.exited', data: { code: exit.code, signal: exit.signal } }];
    } finally {
      followerStop.abort();
      ctx.signal.removeEventListener('abort', stopFollower);
    }
  };
