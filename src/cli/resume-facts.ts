import type { EventData, EventOf, LifecycleEvent } from '../events/schema.js';
import { foldEvents, initialBottleState, type BottleState, type PendingCapability } from '../machines/index.js';
import type { BottlePlan } from '../plan/schema.js';
import type { ApprovedGrant } from '../plan/egress-grants.js';
import { egressAllowEntry, grantScope } from '../shared/capability.js';
import { stateDockerfileText } from '../shared/state-markers.js';

/**
 * What `bottle resume` relaunches from, all of it read from the bottle's event
 * log: the CLI may run on another machine than the bottle's worker, so it
 * never looks into the worker's state folder. The approved Dockerfile and the
 * transcript are what the worker put into that folder (the effects the log's
 * fold requested are the ones the worker ran, and each writes its part before
 * anything else it does); approved egress hosts live in the log alone.
 */
export interface ResumeFacts {
  /** The bottle's lifecycle state, folded from the log. */
  state: BottleState;
  /** The plan of the bottle's latest run (agent, cwd, copy_cwd, host, manifest path); null before any start. */
  plan: BottlePlan | null;
  /** The Dockerfile the bottle was started with (its first plan): null for the built-in agent image. */
  baseDockerfile: string | null;
  /** The bottle's own Dockerfile, from its latest approved Dockerfile request, as its worker wrote it. */
  approvedDockerfile?: string;
  /** A snapshot copied the agent's transcript into the worker's state folder: a resume restores it. */
  transcriptSnapshotted: boolean;
  /** Allowlist entries approved through capability requests, sorted. */
  approvedEgress: string[];
  /** Method/path grants approved through capability requests, in the order they were approved. */
  approvedGrants: ApprovedGrant[];
  /** The original tool's folder this bottle was imported from (bottle.imported): its first resume plans from it. */
  imported?: EventData<'bottle.imported'>;
}

type RequestedEvent = EventOf<'capability.requested'>;

export function resumeFactsFromLog(identity: string, events: readonly LifecycleEvent[]): ResumeFacts {
  const requests = new Map<number, RequestedEvent>();
  for (const event of events) if (event.type === 'capability.requested') requests.set(event.seq, event);
  let approvedDockerfile: string | undefined;
  const approvedEgress = new Set<string>();
  const approvedGrants: ApprovedGrant[] = [];
  const addEgress = (request: PendingCapability) => {
    const scope = grantScope(request);
    if (scope && request.host) approvedGrants.push({ host: request.host, port: request.port ?? 443, ...scope });
    const entry = egressAllowEntry(request);
    if (entry && !scope) approvedEgress.add(entry);
  };
  const state = foldEvents(initialBottleState(identity), events, (_event, effects) => {
    for (const effect of effects) {
      // apply_capability: a Dockerfile, or an egress approval recorded before egress applied live.
      if (effect.kind === 'apply_capability') {
        const { request } = effect.params;
        if (request.kind === 'egress') addEgress(request);
        else approvedDockerfile = approvedBody(request, requests) ?? approvedDockerfile;
      }
      if (effect.kind === 'answer_capability' && effect.params.decision === 'approved') {
        if (effect.params.request.kind === 'egress') addEgress(effect.params.request);
      }
    }
  });
  const start = events.find((e): e is EventOf<'bottle.start_requested'> => e.type === 'bottle.start_requested');
  const original = start?.data.plan.image;
  const imported = events.find((e): e is EventOf<'bottle.imported'> => e.type === 'bottle.imported')?.data;
  // The original's own Dockerfile is the bottle's, as a capability change would have left it; nothing approved since.
  if (imported?.dockerfile !== undefined && approvedDockerfile === undefined) approvedDockerfile = imported.dockerfile;
  return {
    state,
    plan: state.context.plan,
    baseDockerfile: original && !original.builtin ? original.dockerfile : null,
    ...(approvedDockerfile !== undefined ? { approvedDockerfile } : {}),
    transcriptSnapshotted:
      Boolean(imported?.transcript) || events.some((e) => e.type === 'transcript.snapshotted' && !e.data.missing),
    approvedEgress: [...approvedEgress].sort(),
    approvedGrants,
    ...(imported ? { imported } : {}),
  };
}

/**
 * An approved Dockerfile request's body, from its own event in the log; undefined when the log does not
 * hold the one approved (the worker's apply step then fails before writing anything).
 */
function approvedBody(request: PendingCapability, requests: ReadonlyMap<number, RequestedEvent>): string | undefined {
  const event = requests.get(request.requested_seq);
  const body = event?.data.request_id === request.request_id ? event.data.dockerfile : undefined;
  if (body === undefined) return undefined;
  if (request.dockerfile_chars !== undefined && body.length !== request.dockerfile_chars) return undefined;
  return stateDockerfileText(body);
}
