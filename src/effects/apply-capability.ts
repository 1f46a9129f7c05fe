import type { PendingCapability } from '../machines/context.js';
import { egressAllowEntry } from '../shared/capability.js';
import { awaitAgentTold, decisionFile, tellGateway } from './answer-capability.js';
import { removeBottleResources } from './docker/remove-bottle.js';
import { copyTranscript } from './snapshot-transcript.js';
import { markPreserved, writeBottleDockerfile } from './state.js';
import { PermanentEffectError, type EffectContext, type EffectDeps, type EffectHandler } from './types.js';

/**
 * apply_capability: writes an approved Dockerfile into the bottle's state,
 * tells the agent through its gateway that the bottle will be rebuilt,
 * snapshots the transcript, preserves and tears down; the resume rebuilds
 * with the change. An egress approval recorded before egress applied live
 * comes here too: its host needs no writing, the resume reads it from the
 * event log (src/cli/resume-facts.ts).
 */
export const applyCapability =
  ({ docker }: EffectDeps): EffectHandler<'apply_capability'> =>
  async (req, ctx) => {
    const { request } = req.params;
    if (request.kind === 'dockerfile') {
      await writeBottleDockerfile(ctx.identity, await requestedDockerfile(ctx, request));
    } else if (!egressAllowEntry(request)) {
      throw new PermanentEffectError('egress capability request carries no host');
    }
    // Told before the snapshot, so the agent's own note of the answer is in the transcript it resumes with.
    const rebuild = { ...decisionFile(request, 'approved', null), applies: 'rebuild' as const, allow: null };
    // Telling is a courtesy: the rebuild goes ahead whether or not the gateway could take it in.
    if (await tellGateway(docker, ctx.plan, rebuild, ctx.signal).catch(() => false)) {
      await awaitAgentTold(docker, ctx.plan, request.request_id, ctx.signal);
    }
    // Recorded like any other snapshot, so the log shows what the resume will restore.
    const snapshot = await copyTranscript(docker, ctx.plan);
    await markPreserved(ctx.identity, 'capability');
    await removeBottleResources(docker, ctx.identity);
    return [
      snapshot,
      { type: 'bottle.preserved', data: { reason: 'capability', resume_hint: resumeHint(ctx.identity) } },
    ];
  };

/** The approved Dockerfile, from the request's own event in the log (the live state keeps only its length). */
async function requestedDockerfile(ctx: EffectContext, request: PendingCapability): Promise<string> {
  const event = await ctx.loggedEvent?.(request.requested_seq);
  const matches = event?.type === 'capability.requested' && event.data.request_id === request.request_id;
  const dockerfile = matches ? event.data.dockerfile : undefined;
  if (dockerfile === undefined) {
    const where = `the event log at seq ${request.requested_seq}`;
    throw new PermanentEffectError(`the Dockerfile of capability request ${request.request_id} is not in ${where}`);
  }
  if (request.dockerfile_chars !== undefined && dockerfile.length !== request.dockerfile_chars) {
    const id = request.request_id;
    throw new PermanentEffectError(`the logged Dockerfile of capability request ${id} is not the one approved`);
  }
  return dockerfile;
}

export function resumeHint(identity: string): string {
  return `bottle resume ${identity}`;
}
