import { and, assign, not, setup } from 'xstate';
import type { LifecycleEvent } from '../events/schema.js';
import { initialContext, type BottleContext } from './context.js';
import * as update from './context-updates.js';
import * as usageUpdate from './usage-updates.js';
import {
  agentStartParams,
  answerParams,
  applyCapabilityParams,
  budgetParams,
  gatewayStartParams,
  enforcementStopParams,
  launchParams,
  noParams,
  plannedPortsParams,
  preserveParams,
  requestedPortParams,
  unpublishParams,
  rememberedStopParams,
  request,
  snapshotParams,
  stopParams,
  teardownParams,
  type EffectIntent,
} from './effect-requests.js';
import { guards } from './guards.js';
import { legacyGuards } from './legacy-guards.js';

/**
 * The lifecycle of one bottle. Nothing else decides lifecycle: the worker
 * folds events through this machine and executes the effects it requests
 * (effect-requests.ts), as data it never runs itself.
 *
 * The launch is a parallel state: the gateway, pipelock (when the plan uses
 * it) and the agent each have a region that requests its own effect and
 * waits for that effect's event, so the log records each container start
 * from the effect that made it, in the order the starts finished.
 *
 * While running, watch_agent follows the agent and watch_sidecars the containers that enforce
 * its policy; a sidecar that exits first stops the agent (`stopping`) and the bottle is preserved.
 *
 * Every state ignores events that make no sense in it, so any history folds.
 */
const lifecycle = setup({
  types: {
    context: {} as BottleContext,
    events: {} as LifecycleEvent,
    input: {} as { identity: string },
  },
  actions: {
    // Deliberately inert: effects are data for the worker, never run by the machine.
    requestEffect: (_args, _intent: EffectIntent) => {},
    takePlan: assign(update.takePlan),
    startResumedRun: assign(update.startResumedRun),
    recordNetwork: assign(update.recordNetwork),
    restartEgressDecisions: assign(update.restartEgressDecisions),
    recordGatewayCa: assign(update.recordGatewayCa),
    recordExit: assign(update.recordExit),
    recordSidecarExit: assign(update.recordSidecarExit),
    rememberStop: assign(update.rememberStop),
    recordError: assign(update.recordError),
    recordLaunchFailure: assign(update.recordLaunchFailure),
    holdCapability: assign(update.holdCapability),
    queueCapability: assign(update.queueCapability),
    handTurnToNextCapability: assign(update.handTurnToNextCapability),
    recordPreserved: assign(update.recordPreserved),
    takeBudget: assign(usageUpdate.takeBudget),
    recordUsage: assign(usageUpdate.recordUsage),
    raiseBudget: assign(usageUpdate.raiseBudget),
    recordAttention: assign(update.recordAttention),
    recordWorking: assign(update.recordWorking),
    recordPortPublished: assign(update.recordPortPublished),
    recordPortUnpublished: assign(update.recordPortUnpublished),
    closePorts: assign(update.closePorts),
    recordAlarm: assign(update.recordAlarm),
  },
  guards: { ...guards, ...legacyGuards },
});

/** Actions that enqueue named ones: declared once the names they enqueue are known. */
const lifecycleWithRequests = lifecycle.extend({
  actions: {
    // A stop asked for during launch is honoured as soon as there is an agent to stop.
    stopAgentIfStopRequested: lifecycle.enqueueActions(({ context, enqueue }) => {
      if (context.stopRequested) enqueue(request('stop_agent', rememberedStopParams));
    }),
    watchSidecarsIfWatched: lifecycle.enqueueActions(({ check, enqueue }) => {
      if (check('watchesNetwork')) enqueue(request('watch_sidecars', noParams));
    }),
    publishPlannedPorts: lifecycle.enqueueActions(({ check, enqueue }) => {
      if (check('publishesPorts')) enqueue(request('publish_ports', plannedPortsParams));
    }),
  },
});

export const bottleMachine = lifecycleWithRequests.createMachine({
  id: 'bottle',
  initial: 'idle',
  context: ({ input }) => initialContext(input.identity),
  on: {
    // Transient failures are only recorded; BullMQ retries the effect. States
    // that react to permanent failures override this.
    'effect.failed': { actions: 'recordError' },
    // Usage is a fact whatever the state: the gateway's last line may be drained after the agent's exit.
    'usage.recorded': { actions: 'recordUsage' },
    'budget.raised': { guard: 'hasBudget', actions: 'raiseBudget' },
    // Facts, not states: a bottle whose agent waits for the operator is still running (see attention.ts).
    'agent.attention': { actions: 'recordAttention' },
    'agent.working': { actions: 'recordWorking' },
    // A canary alarm is recorded whatever the bottle is doing: it reports what already happened.
    'egress.alarm': { actions: 'recordAlarm' },
  },
  states: {
    idle: {
      on: {
        'bottle.start_requested': { target: 'preparing', actions: ['takePlan', 'takeBudget'] },
        // The original tool's preserved folder: kept for a resume, like a bottle this tool preserved.
        'bottle.imported': 'preserved',
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
        'network.created': { target: 'launching', actions: 'recordNetwork' },
        ...launchStateHandlers(),
      },
    },
    launching: {
      type: 'parallel',
      // A region that failed ends too, so a failed launch waits for its other starts to report before tearing down.
      onDone: [{ guard: 'launchFailed', target: 'failing' }, { target: 'running' }],
      on: {
        'bottle.stop_requested': { actions: 'rememberStop' },
        'effect.failed': { actions: 'recordError' },
      },
      states: {
        gateway: {
          initial: 'starting',
          states: {
            starting: {
              entry: request('start_gateway', gatewayStartParams),
              on: {
                'gateway.started': [
                  // Its agent start already waited for the ready line.
                  { guard: 'legacyLaunch', target: 'ready', actions: 'restartEgressDecisions' },
                  { target: 'readying', actions: 'restartEgressDecisions' },
                ],
                'effect.failed': { guard: 'gatewayFailed', target: 'failed', actions: 'recordLaunchFailure' },
              },
            },
            readying: {
              entry: request('await_gateway_ready', noParams),
              on: {
                'gateway.ready': { target: 'ready', actions: 'recordGatewayCa' },
                'effect.failed': { guard: 'gatewayReadyFailed', target: 'failed', actions: 'recordLaunchFailure' },
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
                'effect.failed': { guard: 'pipelockFailed', target: 'failed', actions: 'recordLaunchFailure' },
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
                  { guard: 'gatewayFailed', target: 'skipped', actions: 'recordLaunchFailure' },
                  { guard: 'gatewayReadyFailed', target: 'skipped', actions: 'recordLaunchFailure' },
                ],
              },
            },
            starting: {
              entry: request('start_agent', agentStartParams),
              on: {
                'agent.started': [{ guard: 'watchesNetwork', target: 'watching' }, { target: 'started' }],
                'effect.failed': { guard: 'agentFailed', target: 'failed', actions: 'recordLaunchFailure' },
              },
            },
            // The agent's own command waits for the watch (wait-for-proxy.c), so nothing it sends goes unseen.
            watching: {
              entry: request('start_netwatch', launchParams),
              on: {
                'netwatch.started': 'started',
                'netwatch.skipped': 'started',
                'effect.failed': { guard: 'netwatchFailed', target: 'failed', actions: 'recordLaunchFailure' },
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
        'watchSidecarsIfWatched',
        'stopAgentIfStopRequested',
        'publishPlannedPorts',
      ],
      on: {
        'agent.exited': { target: 'snapshotting', actions: 'recordExit' },
        // Fail closed: an agent whose gateway or watch is gone is stopped, and the bottle kept for a resume.
        'sidecar.exited': { target: 'stopping', actions: 'recordSidecarExit' },
        // Every stop request asks again (stop_agent is idempotent): a user
        // repeating `bottle stop` on a stuck agent gets a fresh attempt.
        'bottle.stop_requested': { actions: ['rememberStop', request('stop_agent', stopParams)] },
        'capability.requested': [
          { guard: 'noCapabilityPending', actions: 'holdCapability' },
          { guard: 'queuesBehindPending', actions: 'queueCapability' },
        ],
        // The answer is requested before the turn passes, while the decided request is still the pending one.
        'capability.denied': [
          {
            guard: and(['decidesPendingCapability', not('legacyDecision')]),
            actions: [request('answer_capability', answerParams), 'handTurnToNextCapability'],
          },
          { guard: 'decidesPendingCapability', actions: 'handTurnToNextCapability' },
        ],
        // An approval of more egress grows the running gateway's allowlist; Dockerfiles (and v1 egress) rebuild.
        'capability.approved': [
          {
            guard: and(['decidesPendingCapability', 'pendingIsEgress', not('legacyDecision')]),
            actions: [request('answer_capability', answerParams), 'handTurnToNextCapability'],
          },
          { guard: 'decidesPendingCapability', target: 'applying_capability' },
        ],
        // The running gateway is told the new limit (requested before the raise is folded in: it adds it).
        'budget.raised': { guard: 'hasBudget', actions: [request('apply_budget', budgetParams), 'raiseBudget'] },
        // Ports come and go while the agent runs; the teardown that ends the run closes them all.
        'port.publish_requested': { guard: 'portIsFree', actions: request('publish_ports', requestedPortParams) },
        'port.published': { actions: 'recordPortPublished' },
        'port.unpublish_requested': { actions: request('unpublish_port', unpublishParams) },
        'port.unpublished': { actions: 'recordPortUnpublished' },
        'effect.failed': failOnPermanent('failing'),
      },
    },
    // The agent's enforcement is gone (sidecar.exited): it is stopped, and its exit leads to the preserve.
    stopping: {
      entry: request('stop_agent', enforcementStopParams),
      on: {
        'agent.exited': { target: 'snapshotting', actions: 'recordExit' },
        'bottle.stop_requested': { actions: ['rememberStop', request('stop_agent', stopParams)] },
        'effect.failed': failOnPermanent('failing'),
      },
    },
    applying_capability: {
      entry: request('apply_capability', applyCapabilityParams),
      on: {
        'bottle.preserved': { target: 'preserved', actions: ['recordPreserved', 'closePorts'] },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    snapshotting: {
      entry: request('snapshot_transcript', snapshotParams),
      on: {
        'transcript.snapshotted': [{ guard: 'cleanExit', target: 'cleaning' }, { target: 'preserving' }],
        'effect.failed': failOnPermanent('failing'),
      },
    },
    preserving: {
      entry: request('preserve', preserveParams),
      on: {
        'bottle.preserved': { target: 'preserved', actions: ['recordPreserved', 'closePorts'] },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    cleaning: {
      entry: request('cleanup', noParams),
      on: {
        'bottle.cleaned': { target: 'cleaned', actions: 'closePorts' },
        'effect.failed': failOnPermanent('failed'),
      },
    },
    preserved: {
      on: {
        'bottle.resume_requested': { target: 'preparing', actions: ['startResumedRun', 'takeBudget'] },
        'bottle.discard_requested': 'discarding',
      },
    },
    failing: {
      entry: request('teardown_failed', teardownParams),
      on: {
        'bottle.failed': { target: 'failed', actions: 'closePorts' },
        // A failing teardown must not loop back into another teardown.
        'effect.failed': failOnPermanent('failed'),
      },
    },
    failed: {
      on: {
        'bottle.resume_requested': { target: 'preparing', actions: ['startResumedRun', 'takeBudget'] },
        'bottle.discard_requested': 'discarding',
      },
    },
    // A discard that fails for good leaves the bottle failed, its state kept: `bottle rm` may try again.
    discarding: {
      entry: request('discard', noParams),
      on: {
        'bottle.discarded': 'discarded',
        'effect.failed': failOnPermanent('failed'),
      },
    },
    // Thrown away by the operator: nothing is left to resume.
    discarded: {},
    // The state folder is gone, so there is nothing left to resume.
    cleaned: {},
  },
});

// Transition configs shared by several states. Declared as functions so they are
// hoisted above the machine definition and each state gets its own objects.

/** Before the launch: a stop is remembered for later; a permanent failure tears down. */
function launchStateHandlers() {
  return { 'bottle.stop_requested': { actions: 'rememberStop' }, 'effect.failed': failOnPermanent('failing') } as const;
}

function failOnPermanent(target: 'failing' | 'failed') {
  return [{ guard: 'isPermanentFailure', target, actions: 'recordError' }, { actions: 'recordError' }] as const;
}
