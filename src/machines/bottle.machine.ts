import { assign, enqueueActions, setup } from 'xstate';
import type { LifecycleEvent } from '../events/schema.js';
import {
  freshRunFields,
  initialContext,
  type BottleContext,
  type NetworkLayout,
  type PendingCapability,
  type PreserveReason,
} from './context.js';
import type { EffectKind, EffectParams } from './effects.js';

/**
 * The lifecycle of one bottle. Nothing else decides lifecycle: the worker
 * folds events through this machine and executes the effects it requests.
 *
 * Effects are requested as `requestEffect` actions whose params name the
 * effect; the fold (fold.ts) reads them from xstate's pure `transition()`
 * result and never executes them, so replaying history has no side effects.
 *
 * The launch is a parallel state: the gateway, pipelock (when the plan uses
 * it) and the agent each have a region that requests its own effect and
 * waits for that effect's event, so the log records each container start
 * from the effect that made it, in the order the starts finished.
 *
 * Every state ignores events that make no sense in it, so any history folds.
 */

export interface EffectIntent<K extends EffectKind = EffectKind> {
  kind: K;
  params: EffectParams<K>;
}

type ActionArgs = { context: BottleContext; event: LifecycleEvent };

/** Exit statuses above 128 mean the agent was killed by a signal (130 SIGINT, 137 SIGKILL, 143 SIGTERM). */
const killedBySignal = (code: number | null) => code !== null && code > 128;

function preserveReason(context: BottleContext): PreserveReason {
  if (context.stopRequested) return 'stopped';
  return killedBySignal(context.exitCode) ? 'signal' : 'crash';
}

/** A requestEffect action; params are computed from the context and event when the action runs. */
function request<K extends EffectKind>(kind: K, params: (args: ActionArgs) => EffectParams<K>) {
  return {
    type: 'requestEffect' as const,
    params: (args: ActionArgs): EffectIntent<K> => ({ kind, params: params(args) }),
  };
}
const noParams = () => ({});
const launchParams = ({ context }: ActionArgs) => ({ network: context.network });

const permanentFailureOf =
  (kind: EffectKind) =>
  ({ event }: ActionArgs) =>
    event.type === 'effect.failed' && event.data.permanent && event.data.effect === kind;

export const bottleMachine = setup({
  types: {
    context: {} as BottleContext,
    events: {} as LifecycleEvent,
    input: {} as { identity: string },
  },
  actions: {
    // Deliberately inert: effects are data for the worker, never run by the machine.
    requestEffect: (_args, _intent: EffectIntent) => {},
  },
  guards: {
    // Telling the agent a decision is a courtesy to it: failing to, in whatever state, never ends the bottle.
    isPermanentFailure: ({ event }) =>
      event.type === 'effect.failed' && event.data.permanent && event.data.effect !== 'answer_capability',
    noCapabilityPending: ({ context }) => context.pendingCapability === null,
    queuesBehindPending: ({ event }) => event.type === 'capability.requested' && event.data.queue_if_pending,
    decidesPendingCapability: ({ context, event }) =>
      (event.type === 'capability.approved' || event.type === 'capability.denied') &&
      context.pendingCapability?.request_id === event.data.request_id,
    // A v2 approval of more egress grows the running gateway's allowlist; v1 ones (and Dockerfiles) rebuild.
    approvesEgressLive: ({ context, event }) =>
      event.type === 'capability.approved' &&
      !event.data.legacy_decision &&
      context.pendingCapability?.request_id === event.data.request_id &&
      context.pendingCapability.kind === 'egress',
    deniesLive: ({ context, event }) =>
      event.type === 'capability.denied' &&
      !event.data.legacy_decision &&
      context.pendingCapability?.request_id === event.data.request_id,
    cleanExit: ({ context }) => context.exitCode === 0 && !context.stopRequested,
    usesPipelock: ({ context }) => context.plan?.egress?.proxy === 'pipelock',
    // Host credential routes: the agent trusts the CA the gateway creates at its start.
    agentNeedsGatewayCa: ({ context }) =>
      (context.plan?.credentials ?? []).some((route) => route.role !== 'anthropic-base-url' && Boolean(route.host)),
    gatewayFailed: permanentFailureOf('start_gateway'),
    gatewayReadyFailed: permanentFailureOf('await_gateway_ready'),
    pipelockFailed: permanentFailureOf('start_pipelock'),
    agentFailed: permanentFailureOf('start_agent'),
    netwatchFailed: permanentFailureOf('start_netwatch'),
    // Plans from before the network watch have no container for it.
    watchesNetwork: ({ context }) => Boolean(context.plan?.containers.netwatch),
    // A v1 gateway.started: see its schema.
    legacyLaunch: ({ event }) => event.type === 'gateway.started' && event.data.legacy_launch,
    launchFailed: ({ context }) => context.launchFailure !== null,
  },
}).createMachine({
  id: 'bottle',
  initial: 'idle',
  context: ({ input }) => initialContext(input.identity),
  on: {
    // Transient failures are only recorded; BullMQ retries the effect. States
    // that react to permanent failures override this.
    'effect.failed': { actions: recordError() },
  },
  states: {
    idle: {
      on: {
        'bottle.start_requested': {
          target: 'preparing',
          actions: assign({ plan: ({ event }) => event.data.plan }),
        },
      },
    },
    preparing: {
      entry: request('prepare_state', noParams),
      on: { 'bottle.prepared': 'building', ...launchStateHandlers() },
    },
    building: {
      entry: request('build_image', noParams),
      on: { 'image.built': 'networking', ...launchStateHandlers() },
    },
    networking: {
      entry: request('create_networks', noParams),
      on: {
        'network.created': {
          target: 'launching',
          actions: assign({ network: ({ event }) => networkLayoutOf(event) }),
        },
        ...launchStateHandlers(),
      },
    },
    launching: {
      type: 'parallel',
      // A region that failed ends too, so a failed launch waits for its other starts to report before tearing down.
      onDone: [{ guard: 'launchFailed', target: 'failing' }, { target: 'running' }],
      on: {
        'bottle.stop_requested': rememberStop(),
        'effect.failed': { actions: recordError() },
      },
      states: {
        gateway: {
          initial: 'starting',
          states: {
            starting: {
              entry: request('start_gateway', launchParams),
              on: {
                'gateway.started': [
                  // Its agent start already waited for the ready line.
                  { guard: 'legacyLaunch', target: 'ready', actions: assign({ lastEgressDecision: 0 }) },
                  // Decision numbers restart with each gateway container.
                  { target: 'readying', actions: assign({ lastEgressDecision: 0 }) },
                ],
                'effect.failed': { guard: 'gatewayFailed', target: 'failed', actions: recordLaunchFailure() },
              },
            },
            readying: {
              entry: request('await_gateway_ready', noParams),
              on: {
                'gateway.ready': {
                  target: 'ready',
                  actions: assign({ gatewayCa: ({ event }) => event.data.interception_ca ?? null }),
                },
                'effect.failed': { guard: 'gatewayReadyFailed', target: 'failed', actions: recordLaunchFailure() },
              },
            },
            ready: { type: 'final' },
            failed: { type: 'final' },
          },
        },
        pipelock: {
          initial: 'deciding',
          states: {
            deciding: { always: [{ guard: 'usesPipelock', target: 'starting' }, { target: 'unused' }] },
            starting: {
              entry: request('start_pipelock', launchParams),
              on: {
                'pipelock.started': 'started',
                'gateway.started': { guard: 'legacyLaunch', target: 'started' },
                'effect.failed': { guard: 'pipelockFailed', target: 'failed', actions: recordLaunchFailure() },
              },
            },
            started: { type: 'final' },
            unused: { type: 'final' },
            failed: { type: 'final' },
          },
        },
        agent: {
          initial: 'deciding',
          states: {
            deciding: { always: [{ guard: 'agentNeedsGatewayCa', target: 'waiting' }, { target: 'starting' }] },
            waiting: {
              on: {
                'gateway.ready': 'starting',
                'gateway.started': { guard: 'legacyLaunch', target: 'starting' },
                'effect.failed': [
                  { guard: 'gatewayFailed', target: 'skipped', actions: recordLaunchFailure() },
                  { guard: 'gatewayReadyFailed', target: 'skipped', actions: recordLaunchFailure() },
                ],
              },
            },
            starting: {
              entry: request('start_agent', ({ context }) => ({
                network: context.network,
                interception_ca: context.gatewayCa,
              })),
              on: {
                'agent.started': [{ guard: 'watchesNetwork', target: 'watching' }, { target: 'started' }],
                'effect.failed': { guard: 'agentFailed', target: 'failed', actions: recordLaunchFailure() },
              },
            },
            // The agent's own command waits for the watch (wait-for-proxy.c), so nothing it sends goes unseen.
            watching: {
              entry: request('start_netwatch', ({ context }) => ({ network: context.network })),
              on: {
                'netwatch.started': 'started',
                'netwatch.skipped': 'started',
                'effect.failed': { guard: 'netwatchFailed', target: 'failed', actions: recordLaunchFailure() },
              },
            },
            started: { type: 'final' },
            skipped: { type: 'final' },
            failed: { type: 'final' },
          },
        },
      },
    },
    running: {
      entry: [
        request('watch_agent', noParams),
        // A stop asked for during launch is honoured as soon as there is an agent to stop.
        enqueueActions(({ context, enqueue }) => {
          if (context.stopRequested) enqueue(request('stop_agent', () => ({ by: context.stopRequestedBy })));
        }),
      ],
      on: {
        'agent.exited': {
          target: 'snapshotting',
          actions: assign({
            exitCode: ({ event }) => event.data.code,
            signal: ({ event }) => event.data.signal,
          }),
        },
        // Every stop request asks again (stop_agent is idempotent): a user
        // repeating `bottle stop` on a stuck agent gets a fresh attempt.
        'bottle.stop_requested': {
          actions: [
            assign({ stopRequested: true, stopRequestedBy: ({ event }) => event.data.by }),
            request('stop_agent', ({ event }) => ({
              by: event.type === 'bottle.stop_requested' ? event.data.by : null,
            })),
          ],
        },
        'capability.requested': [
          {
            guard: 'noCapabilityPending',
            actions: assign({ pendingCapability: ({ event }) => pendingFrom(event) }),
          },
          {
            guard: 'queuesBehindPending',
            actions: assign({
              queuedCapabilities: ({ context, event }) => [...context.queuedCapabilities, pendingFrom(event)],
            }),
          },
        ],
        'capability.denied': [
          { guard: 'deniesLive', actions: [answerDecision(), nextPendingCapability()] },
          { guard: 'decidesPendingCapability', actions: nextPendingCapability() },
        ],
        'capability.approved': [
          { guard: 'approvesEgressLive', actions: [answerDecision(), nextPendingCapability()] },
          { guard: 'decidesPendingCapability', target: 'applying_capability' },
        ],
        'effect.failed': failOnPermanent('failing'),
      },
    },
    applying_capability: {
      entry: request('apply_capability', ({ context, event }) => ({
        request: context.pendingCapability!,
        approved_by: event.type === 'capability.approved' ? event.data.by : null,
      })),
      on: {
        'bottle.preserved': {
          target: 'preserved',
          actions: assign({ preservedReason: ({ event }) => event.data.reason }),
        },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    snapshotting: {
      entry: request('snapshot_transcript', ({ context }) => ({ code: context.exitCode, signal: context.signal })),
      on: {
        'transcript.snapshotted': [{ guard: 'cleanExit', target: 'cleaning' }, { target: 'preserving' }],
        'effect.failed': failOnPermanent('failing'),
      },
    },
    preserving: {
      entry: request('preserve', ({ context }) => ({ reason: preserveReason(context) })),
      on: {
        'bottle.preserved': {
          target: 'preserved',
          actions: assign({ preservedReason: ({ event }) => event.data.reason }),
        },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    cleaning: {
      entry: request('cleanup', noParams),
      on: {
        'bottle.cleaned': 'cleaned',
        'effect.failed': failOnPermanent('failed'),
      },
    },
    preserved: {
      on: { 'bottle.resume_requested': resume() },
    },
    failing: {
      entry: request('teardown_failed', ({ context }) => {
        const failure = context.launchFailure ?? context.lastError;
        return { effect: failure?.effect ?? 'unknown', error: failure?.error ?? 'unknown' };
      }),
      on: {
        'bottle.failed': 'failed',
        // A failing teardown must not loop back into another teardown.
        'effect.failed': failOnPermanent('failed'),
      },
    },
    failed: {
      on: { 'bottle.resume_requested': resume() },
    },
    // The state folder is gone, so there is nothing left to resume.
    cleaned: {},
  },
});

// Transition configs shared by several states. Declared as functions so they are
// hoisted above the machine definition and each state gets its own objects.

function recordError() {
  return assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
    lastError: ({ event, context }) =>
      event.type === 'effect.failed' ? { ...event.data, seq: event.seq } : context.lastError,
  });
}

/** The first permanent failure of a launch region: what the teardown reports, whatever is recorded after it. */
function recordLaunchFailure() {
  return [
    recordError(),
    assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
      launchFailure: ({ event, context }) =>
        context.launchFailure ??
        (event.type === 'effect.failed' ? { effect: event.data.effect, error: event.data.error } : null),
    }),
  ];
}

/** The decided request hands the operator's turn to the one queued behind it. */
function nextPendingCapability() {
  return assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
    pendingCapability: ({ context }) => context.queuedCapabilities[0] ?? null,
    queuedCapabilities: ({ context }) => context.queuedCapabilities.slice(1),
  });
}

/** The decision as the agent will learn it (listed before the pending request is replaced). */
function answerDecision() {
  return request('answer_capability', ({ context, event }) => {
    const decided = context.pendingCapability!;
    if (event.type === 'capability.denied') {
      return { request: decided, decision: 'denied' as const, reason: event.data.reason, by: event.data.by };
    }
    const by = event.type === 'capability.approved' ? event.data.by : null;
    return { request: decided, decision: 'approved' as const, reason: null, by };
  });
}

function rememberStop() {
  return {
    actions: assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
      stopRequested: true,
      stopRequestedBy: ({ event }) => (event.type === 'bottle.stop_requested' ? event.data.by : null),
    }),
  };
}

/** Before the launch: a stop is remembered for later; a permanent failure tears down. */
function launchStateHandlers() {
  return { 'bottle.stop_requested': rememberStop(), 'effect.failed': failOnPermanent('failing') } as const;
}

function failOnPermanent(target: 'failing' | 'failed') {
  return [{ guard: 'isPermanentFailure', target, actions: recordError() }, { actions: recordError() }] as const;
}

function resume() {
  return {
    target: 'preparing',
    actions: assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>(({ context, event }) =>
      event.type === 'bottle.resume_requested'
        ? { ...freshRunFields(), plan: event.data.plan, resumes: context.resumes + 1 }
        : {},
    ),
  } as const;
}

/** The layout network.created reports; null for networks made before they had fixed addresses. */
function networkLayoutOf(event: LifecycleEvent): NetworkLayout | null {
  if (event.type !== 'network.created') return null;
  const { internal, egress, subnets, addresses } = event.data;
  if (!subnets || !addresses) return null;
  return {
    internal: { name: internal, subnet: subnets.internal },
    egress: { name: egress, subnet: subnets.egress },
    addresses,
  };
}

/**
 * What the context keeps of a request: its data (without the queuing flag) and where it is in
 * the log; of a Dockerfile only its length (readers take the body from the event).
 */
function pendingFrom(event: LifecycleEvent): PendingCapability {
  if (event.type !== 'capability.requested') throw new Error(`not a capability request: ${event.type}`);
  const { queue_if_pending: _queued, dockerfile, ...request } = event.data;
  const size = dockerfile !== undefined ? { dockerfile_chars: dockerfile.length } : {};
  return { ...request, ...size, requested_seq: event.seq };
}
