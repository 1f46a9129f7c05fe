import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { z } from 'zod';
import { BottlePlanSchema, type BottlePlan } from '../plan/schema.js';
import { statePaths } from '../shared/paths.js';

/**
 * The per-bottle state folder on the worker's host: metadata for `resume` and
 * `list`, the preservation marker, and (written elsewhere) the transcript
 * snapshot and a capability-changed Dockerfile.
 */
export const MetadataSchema = z.object({
  identity: z.string(),
  agent: z.string(),
  bottle: z.string(),
  cwd: z.string(),
  copy_cwd: z.boolean(),
  started_at: z.string(),
  host: z.string(),
  /**
   * The bottle's own Dockerfile before any capability change (null: the
   * built-in image). Kept across resumes: once a capability change wrote
   * state/<id>/Dockerfile, the plan names that file, and the image still
   * needs the original folder as its build context.
   */
  base_dockerfile: z.string().nullable().optional(),
  plan: BottlePlanSchema,
});
export type Metadata = z.infer<typeof MetadataSchema>;

export const PreserveMarkerSchema = z.object({ reason: z.string(), at: z.string() });

/** mkdir -p, write metadata.json, and clear a `.preserve` left by an earlier run: a launching bottle is no longer preserved. */
export async function prepareState(identity: string, plan: BottlePlan, now: () => Date = () => new Date()): Promise<string> {
  const paths = statePaths(identity);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const previous = await readMetadata(identity).catch(() => undefined);
  const metadata: Metadata = {
    identity,
    agent: plan.agent,
    bottle: plan.bottle,
    cwd: plan.cwd,
    copy_cwd: plan.copy_cwd,
    started_at: now().toISOString(),
    host: hostname(),
    base_dockerfile: previous?.base_dockerfile !== undefined ? previous.base_dockerfile : plan.image.builtin ? null : plan.image.dockerfile,
    plan,
  };
  // Write-then-rename so a reader never sees half a file.
  const partial = `${paths.metadata}.partial`;
  await writeFile(partial, JSON.stringify(metadata, null, 2) + '\n', { mode: 0o600 });
  await rename(partial, paths.metadata);
  await rm(paths.preserveMarker, { force: true });
  return paths.dir;
}

export async function markPreserved(identity: string, reason: string, now: () => Date = () => new Date()): Promise<void> {
  const paths = statePaths(identity);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(paths.preserveMarker, JSON.stringify({ reason, at: now().toISOString() }) + '\n', { mode: 0o600 });
}

export function isPreserved(identity: string): boolean {
  return existsSync(statePaths(identity).preserveMarker);
}

export async function removeState(identity: string): Promise<void> {
  await rm(statePaths(identity).dir, { recursive: true, force: true });
}

/** undefined when the bottle has no state folder (cleaned, or never prepared here). */
export async function readMetadata(identity: string): Promise<Metadata | undefined> {
  let text: string;
  try {
    text = await readFile(statePaths(identity).metadata, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return MetadataSchema.parse(JSON.parse(text));
}

/** Deletes a file that may already be gone. */
export async function removeFileIfPresent(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
