import type Dockerode from 'dockerode';
import { mkdir, statfs } from 'node:fs/promises';
import type { NewEvent } from '../events/schema.js';
import { TRANSCRIPT_TARGET } from '../plan/agent-env.js';
import { DEFAULT_TRANSCRIPT_LIMIT } from '../plan/default-limits.js';
import type { BottlePlan } from '../plan/schema.js';
import { snapshotDir } from './docker/archive.js';
import { statusOf } from './docker/client.js';
import { stateLocations } from './state.js';
import { SnapshotWontFit, sizeInBytes, TranscriptBudget } from './transcript-budget.js';
import { PermanentEffectError, type EffectDeps, type EffectHandler } from './types.js';

/** The bottle's transcript limit in bytes: the plan's, else the default (a plan from before limits had one). */
function transcriptLimit(plan: BottlePlan): number {
  const limit = plan.limits.transcript ?? DEFAULT_TRANSCRIPT_LIMIT;
  const bytes = sizeInBytes(limit);
  if (bytes === undefined) throw new PermanentEffectError(`invalid transcript limit ${JSON.stringify(limit)}`);
  return bytes;
}

/** What the state folder's disk has free for an unprivileged writer. */
async function freeBytes(folder: string): Promise<number> {
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const fs = await statfs(folder);
  return fs.bavail * fs.bsize;
}

/** Copies the agent's `~/.claude` into the state folder; shared by snapshot_transcript and apply_capability. */
export async function copyTranscript(docker: Dockerode, plan: BottlePlan): Promise<NewEvent<'transcript.snapshotted'>> {
  const where = stateLocations(plan.identity);
  const budget = new TranscriptBudget(transcriptLimit(plan), await freeBytes(where.dir));
  try {
    const admit = (path: string, bytes: number) => budget.admit(path, bytes);
    const result = await snapshotDir(docker, plan.containers.agent, TRANSCRIPT_TARGET, where.transcript, admit);
    const warning =
      result.refused > 0
        ? `${result.refused} transcript entries were not copied ` +
          '(links or special files that could leave the state folder)'
        : undefined;
    const skipped =
      budget.skippedCount > 0
        ? {
            skipped: budget.skipped,
            skipped_count: budget.skippedCount,
            skipped_bytes: budget.skippedBytes,
            limit_bytes: budget.limitBytes,
          }
        : {};
    const data = {
      files: result.files,
      bytes: result.bytes,
      missing: result.missing,
      ...(warning ? { warning } : {}),
      ...skipped,
    };
    return { type: 'transcript.snapshotted', data };
  } catch (err) {
    if (err instanceof SnapshotWontFit) throw new PermanentEffectError(`transcript snapshot: ${err.message}`);
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
