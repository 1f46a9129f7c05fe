import type Dockerode from 'dockerode';
import type { NewEvent } from '../events/schema.js';
import { TRANSCRIPT_TARGET } from '../plan/agent-env.js';
import type { BottlePlan } from '../plan/schema.js';
import { snapshotDir } from './docker/archive.js';
import { statusOf } from './docker/client.js';
import { stateLocations } from './state.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** Copies the agent's `~/.claude` into the state folder; shared by snapshot_transcript and apply_capability. */
export async function copyTranscript(docker: Dockerode, plan: BottlePlan): Promise<NewEvent<'transcript.snapshotted'>> {
  const target = stateLocations(plan.identity).transcript;
  try {
    const result = await snapshotDir(docker, plan.containers.agent, TRANSCRIPT_TARGET, target);
    const warning =
      result.refused > 0
        ? `${result.refused} transcript entries were not copied ` +
          '(links or special files that could leave the state folder)'
        : undefined;
    const data = { files: result.files, bytes: result.bytes, missing: result.missing, ...(warning ? { warning } : {}) };
    return { type: 'transcript.snapshotted', data };
  } catch (err) {
    // No agent container (it never started, or a retry after teardown): nothing to copy, and the lifecycle must go on.
    if (statusOf(err) === 404) {
      const data = { files: 0, bytes: 0, missing: true, warning: 'the agent container no longer exists' };
      return { type: 'transcript.snapshotted', data };
    }
    throw err;
  }
}

/** snapshot_transcript: the transcript kept for a resume, before the preservation matrix decides. */
export const snapshotTranscript =
  ({ docker }: EffectDeps): EffectHandler<'snapshot_transcript'> =>
  async (_req, ctx) => [await copyTranscript(docker, ctx.plan)];
