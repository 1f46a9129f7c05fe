import type { LifecycleEvent } from '../events/schema.js';
import type { BottleContext } from './context.js';

/**
 * What the machine still knows of histories written by earlier versions. Events are upcast on
 * read (src/events/upcast.ts), but an upcaster turns one stored record into one event of the
 * same type, seeing nothing else of the log. Each guard here keeps a meaning no current shape
 * has: old events are marked by their upcaster and the machine reads the mark; old plans are
 * told apart by what they lack. Reading these as current shapes would change how stored logs
 * fold (test/golden). For the same reason a v1 gateway.started settles start_pipelock (effects.ts).
 */

type GuardArgs = { context: BottleContext; event: LifecycleEvent };

export const legacyGuards = {
  // A v1 gateway.started stands for what a current launch records as separate events: the gateway
  // started, it is ready (its agent start waited for the ready line) and pipelock started with it.
  legacyLaunch: ({ event }: GuardArgs) => event.type === 'gateway.started' && event.data.legacy_launch,
  // A v1 decision was never told to the agent, and a v1 egress approval was applied by a rebuild.
  // Which request it decides, and so whether it is egress, is known only from an earlier event.
  legacyDecision: ({ event }: GuardArgs) =>
    (event.type === 'capability.approved' || event.type === 'capability.denied') && event.data.legacy_decision === true,
  // Plans from before the network watch have no container for it; a plan is stored as it was
  // made, and one given a watch it never had would ask for a start its launch never made.
  // Their running bottles were not watched for a sidecar's exit either: their stored logs, on
  // entering running, asked for watch_agent alone, and a fold of them still does.
  watchesNetwork: ({ context }: GuardArgs) => Boolean(context.plan?.containers.netwatch),
};
