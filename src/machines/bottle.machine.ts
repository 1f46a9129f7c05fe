import { assign, enqueueActions, setup } from 'xstate';
import type { EffectKind } from '../effects/types.js';
import type { LifecycleEvent } from '../events/schema.js';
import { freshRunFields, initialContext, type BottleContext, type PendingCapability } from './context.js';

/**
 * The lifecycle of one bottle. Nothing else decides lifecycle: the worker
 * folds events through this machine and executes the effects it requests.
 *
 * Effects are requested as `requestEffect` actions whose params name the
 * effect; the fold (fold.ts) reads them from xstate's pure `transition()`
 * result and never executes them, so replaying history has no side effects.
 *
 * Every state ignores events that make no sense in it, so any history folds.
 */

export interface EffectIntent {
  kind: EffectKind;
  params: Record<string, unknown>;
}

/** Exit statuses above 128 mean the agent was killed by a signal (130 SIGINT, 137 SIGKILL, 143 SIGTERM). */
const killedBySignal = (code: number | null) => code !== null && code > 128;

function preserveReason(context: BottleContext): 'stopped' | 'signal' | 'crash' {
  if (context.stopRequested) return 'stopped';
  return killedBySignal(context.exitCode) ? 'signal' : 'crash';
}

const request = (kind: EffectKind, params: Record<string, unknown> = {}) =>
  ({ type: 'requestEffect', params: { kind, params } }) as const;

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
    isPermanentFailure: ({ event }) => event.type === 'effect.failed' && event.data.permanent,
    noCapabilityPending: ({ context }) => context.pendingCapability === null,
    queuesBehindPending: ({ event }) => event.type === 'capability.requested' && event.data.queue_if_pending,
    decidesPendingCapability: ({ context, event }) =>
      (event.type === 'capability.approved' || event.type === 'capability.denied') &&
      context.pendingCapability?.request_id === event.data.request_id,
    cleanExit: ({ context }) => context.exitCode === 0 && !context.stopRequested,
  },
}).createMachine({
  id: 'bottle',
  initial: 'idle',
  context: ({ input }) => initialContext(input.identity),
  on: {
    // Transient failures are only recorded; BullMQ retries the effect. States
    // that react to permanent failures override this.
    'effect.failed': {
      actions: assign({
        lastError: ({ event }) => ({ ...event.data, seq: event.seq }),
      }),
    },
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
      entry: request('prepare_state'),
      on: {
        'bottle.prepared': 'building',
        ...launchStateHandlers(),
      },
    },
    building: {
      entry: request('build_image'),
      on: {
        'image.built': 'networking',
        ...launchStateHandlers(),
      },
    },
    networking: {
      entry: request('create_networks'),
      on: {
        'network.created': 'starting_gateway',
        ...launchStateHandlers(),
      },
    },
    starting_gateway: {
      entry: request('start_gateway'),
      on: {
        'gateway.started': {
          target: 'launching',
          // Decision numbers restart with each gateway container.
          actions: assign({ lastEgressDecision: 0 }),
        },
        ...launchStateHandlers(),
      },
    },
    launching: {
      entry: request('start_agent'),
      on: {
        'agent.started': 'running',
        ...launchStateHandlers(),
      },
    },
    running: {
      entry: [
        request('watch_agent'),
        // A stop asked for during launch is honoured as soon as there is an agent to stop.
        enqueueActions(({ context, enqueue }) => {
          if (context.stopRequested) enqueue(request('stop_agent', { by: context.stopRequestedBy }));
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
            { type: 'requestEffect', params: ({ event }) => ({ kind: 'stop_agent', params: { by: event.data.by } }) },
          ],
        },
        'capability.requested': [
          {
            guard: 'noCapabilityPending',
            actions: assign({ pendingCapability: ({ event }) => pendingFrom(event) }),
          },
          {
            guard: 'queuesBehindPending',
            actions: assign({ queuedCapabilities: ({ context, event }) => [...context.queuedCapabilities, pendingFrom(event)] }),
          },
        ],
        'capability.denied': {
          guard: 'decidesPendingCapability',
          actions: assign({
            pendingCapability: ({ context }) => context.queuedCapabilities[0] ?? null,
            queuedCapabilities: ({ context }) => context.queuedCapabilities.slice(1),
          }),
        },
        'capability.approved': {
          guard: 'decidesPendingCapability',
          target: 'applying_capability',
        },
        'effect.failed': failOnPermanent('failing'),
      },
    },
    applying_capability: {
      entry: {
        type: 'requestEffect',
        params: ({ context, event }) => ({
          kind: 'apply_capability',
          params: {
            request: context.pendingCapability,
            approved_by: event.type === 'capability.approved' ? event.data.by : null,
          },
        }),
      },
      on: {
        'bottle.preserved': {
          target: 'preserved',
          actions: assign({ preservedReason: ({ event }) => event.data.reason }),
        },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    snapshotting: {
      entry: {
        type: 'requestEffect',
        params: ({ context }) => ({
          kind: 'snapshot_transcript',
          params: { code: context.exitCode, signal: context.signal },
        }),
      },
      on: {
        'transcript.snapshotted': [{ guard: 'cleanExit', target: 'cleaning' }, { target: 'preserving' }],
        'effect.failed': failOnPermanent('failing'),
      },
    },
    preserving: {
      entry: {
        type: 'requestEffect',
        params: ({ context }) => ({ kind: 'preserve', params: { reason: preserveReason(context) } }),
      },
      on: {
        'bottle.preserved': {
          target: 'preserved',
          actions: assign({ preservedReason: ({ event }) => event.data.reason }),
        },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    cleaning: {
      entry: request('cleanup'),
      on: {
        'bottle.cleaned': 'cleaned',
        'effect.failed': failOnPermanent('failed'),
      },
    },
    preserved: {
      on: { 'bottle.resume_requested': resume() },
    },
    failing: {
      entry: {
        type: 'requestEffect',
        params: ({ event }) => ({
          kind: 'teardown_failed',
          params:
            event.type === 'effect.failed'
              ? { effect: event.data.effect, error: event.data.error }
              : { effect: 'unknown', error: 'unknown' },
        }),
      },
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

/** Before `running`: a stop is remembered for later; a permanent failure tears down. */
function launchStateHandlers() {
  return {
    'bottle.stop_requested': {
      actions: assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
        stopRequested: true,
        stopRequestedBy: ({ event }) => (event.type === 'bottle.stop_requested' ? event.data.by : null),
      }),
    },
    'effect.failed': failOnPermanent('failing'),
  } as const;
}

function failOnPermanent(target: 'failing' | 'failed') {
  const recordError = assign<BottleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
    lastError: ({ event, context }) =>
      event.type === 'effect.failed' ? { ...event.data, seq: event.seq } : context.lastError,
  });
  return [{ guard: 'isPermanentFailure', target, actions: recordError }, { actions: recordError }] as const;
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

/** What the context keeps of a request: its data (without the queuing flag) and where it is in the log. */
function pendingFrom(event: LifecycleEvent): PendingCapability {
  if (event.type !== 'capability.requested') throw new Error(`not a capability request: ${event.type}`);
  const { queue_if_pending: _queued, ...request } = event.data;
  return { ...request, requested_seq: event.seq };
}
