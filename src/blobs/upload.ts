import { dirname, isAbsolute } from 'node:path';
import type { Redis } from 'ioredis';
import type { BottlePlan, Upload } from '../plan/schema.js';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import { formatBytes } from '../shared/format-bytes.js';
import { putBlob, uploadLimitBytes } from './store.js';
import { packFile, packFolder } from './tree.js';

interface PlanSource {
  source: string;
  reading: Upload['reading'];
  /** How an error or progress line names it. */
  what: string;
}

/**
 * What of a plan the worker reads from the CLI's machine; the bottle's own
 * state is the worker's. A resumed bottle whose approved Dockerfile replaced
 * its own still builds in its original Dockerfile's folder (`baseDockerfile`).
 */
export function planSources(plan: BottlePlan, baseDockerfile?: string | null): PlanSource[] {
  const sources: PlanSource[] = [];
  const dockerfile = baseDockerfile ?? (plan.image.builtin ? undefined : plan.image.dockerfile);
  if (dockerfile && isAbsolute(dockerfile)) {
    const folder = dirname(dockerfile);
    sources.push({ source: folder, reading: 'build-context', what: `the build context ${folder}` });
  }
  for (const mount of plan.mounts) {
    if (mount.kind !== 'copy') continue;
    if (mount.purpose === 'cwd') {
      sources.push({ source: mount.source, reading: 'copy', what: `the working folder ${mount.source} (copy_cwd)` });
    } else if (mount.purpose === 'prompt') {
      sources.push({ source: mount.source, reading: 'file', what: `the prompt ${mount.source}` });
    } else if (mount.purpose === 'skill') {
      sources.push({ source: mount.source, reading: 'copy', what: `the skill ${mount.source}` });
    }
  }
  return sources;
}

/** Packs and sends each source the worker needs (content already in Redis is not sent again). */
export async function uploadPlanSources(
  redis: Redis,
  plan: BottlePlan,
  opts: { say?: (line: string) => void; baseDockerfile?: string | null; env?: NodeJS.ProcessEnv } = {},
): Promise<Upload[]> {
  const say = opts.say ?? (() => undefined);
  const limit = uploadLimitBytes(opts.env);
  const uploads: Upload[] = [];
  for (const { source, reading, what } of planSources(plan, opts.baseDockerfile)) {
    const tar = await pack(source, reading, what, limit);
    const stored = await putBlob(redis, tar, what, limit);
    if (stored.sent && stored.bytes >= SHOWN_UPLOAD_BYTES) say(`uploaded ${what} (${formatBytes(stored.bytes)})`);
    uploads.push({ source, reading, blob: stored.blob, bytes: stored.bytes });
  }
  return uploads;
}

/** A source that cannot be read (gone since the plan, unreadable) is named in one line. */
async function pack(source: string, reading: Upload['reading'], what: string, limit: number): Promise<Buffer> {
  try {
    return reading === 'file' ? await packFile(source, what, limit) : await packFolder(source, reading, what, limit);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new RuntimeFailure(`cannot read ${what} to send it to the worker (${code ?? (err as Error).message})`);
  }
}

/** Uploads smaller than this go unmentioned. */
const SHOWN_UPLOAD_BYTES = 1024 * 1024;
