import { egressAllowEntry } from '../shared/capability.js';
import { removeBottleResources } from './docker/teardown.js';
import { snapshotTranscript } from './snapshot.js';
import { addApprovedEgress, markPreserved, writeBottleDockerfile } from './state.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';

/**
 * apply_capability: writes an approved request into the bottle's state (its
 * own Dockerfile, or one more allowed host), snapshots the transcript,
 * preserves and tears down; the resume rebuilds with the change.
 */
export const applyCapability =
  ({ docker }: EffectDeps): EffectHandler<'apply_capability'> =>
  async (req, ctx) => {
    const { request } = req.params;
    if (request.kind === 'dockerfile') {
      if (!request.dockerfile) throw new PermanentEffectError('dockerfile capability request carries no Dockerfile');
      await writeBottleDockerfile(ctx.identity, request.dockerfile);
    } else {
      const entry = egressAllowEntry(request);
      if (!entry) throw new PermanentEffectError('egress capability request carries no host');
      await addApprovedEgress(ctx.identity, entry);
    }
    // Recorded like any other snapshot, so the log shows what the resume will restore.
    const snapshot = await snapshotTranscript(docker, ctx.plan);
    await markPreserved(ctx.identity, 'capability');
    await removeBottleResources(docker, ctx.identity);
    return [snapshot, { type: 'bottle.preserved', data: { reason: 'capability', resume_hint: resumeHint(ctx.identity) } }];
  };

export function resumeHint(identity: string): string {
  return `bottle resume ${identity}`;
}
