import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { z } from 'zod';
import { BottlePlanSchema, type BottlePlan } from '../plan/schema.js';
import { IDENTITY_PATTERN } from '../shared/identity.js';
import { bottleHome, statePaths } from '../shared/paths.js';
import { STATE_DOCKERFILE, stateDockerfileText } from '../shared/state-markers.js';

/**
 * The per-bottle state folder on the worker's host, and the only code that
 * reads or writes it: metadata (the original Dockerfile a rebuild starts
 * from), the preservation marker, an approved Dockerfile, pipelock's config,
 * and (through snapshot copies) the transcript. Only the worker's effects use
 * it: the CLI, maybe on another machine, learns the same facts from the event
 * log (src/cli/resume-facts.ts), which alone keeps approved egress hosts (an
 * older bottle's folder may still hold an egress-extra.json nothing reads).
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

/** Writes metadata.json and clears a `.preserve` left by an earlier run: a launching bottle is no longer preserved. */
export async function prepareStateFolder(
  identity: string,
  plan: BottlePlan,
  now: () => Date = () => new Date(),
): Promise<string> {
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
    // A bottle whose first plan already runs its own Dockerfile (one imported from the original tool, whose
    // per-bottle Dockerfile replaced the built-in image) has the built-in image's context as its base.
    base_dockerfile:
      previous?.base_dockerfile !== undefined
        ? previous.base_dockerfile
        : plan.image.builtin || plan.image.dockerfile === STATE_DOCKERFILE
          ? null
          : plan.image.dockerfile,
    plan,
  };
  // Write-then-rename so a reader never sees half a file.
  const partial = `${paths.metadata}.partial`;
  await writeFile(partial, JSON.stringify(metadata, null, 2) + '\n', { mode: 0o600 });
  await rename(partial, paths.metadata);
  await rm(paths.preserveMarker, { force: true });
  return paths.dir;
}

export async function markPreserved(
  identity: string,
  reason: string,
  now: () => Date = () => new Date(),
): Promise<void> {
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

/** Every bottle state folder on this host, with whether it is kept for a resume. */
export function resumableStateFolders(): Array<{ identity: string; dir: string; preserved: boolean }> {
  const root = join(bottleHome(), 'state');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => IDENTITY_PATTERN.test(name))
    .map((identity) => ({ identity, dir: statePaths(identity).dir, preserved: isPreserved(identity) }));
}

/** Deletes a file that may already be gone. */
export async function removeFileIfPresent(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

const PIPELOCK_CONFIG_FILE = 'pipelock.yaml';

/** Where a bottle's state lives; for effects that hand a path to Docker or copy a folder. */
export function stateLocations(identity: string) {
  const paths = statePaths(identity);
  return { dir: paths.dir, metadata: paths.metadata, transcript: paths.transcript, dockerfile: paths.dockerfile };
}

export function hasTranscript(identity: string): boolean {
  return existsSync(statePaths(identity).transcript);
}

/** An approved Dockerfile request: the bottle's own Dockerfile from now on. */
export async function writeBottleDockerfile(identity: string, dockerfile: string): Promise<void> {
  const paths = statePaths(identity);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(paths.dockerfile, stateDockerfileText(dockerfile), { mode: 0o644 });
}

/**
 * Whether a plan's Dockerfile is the bottle's own one in its state folder:
 * named by the marker, or (plans recorded before it) by this host's path.
 */
export function namesStateDockerfile(identity: string, dockerfile: string): boolean {
  return dockerfile === STATE_DOCKERFILE || dockerfile === statePaths(identity).dockerfile;
}

/** pipelock's config for this launch; returns the host path Docker bind-mounts. */
export async function writePipelockConfig(identity: string, yaml: string): Promise<string> {
  const paths = statePaths(identity);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const path = join(paths.dir, PIPELOCK_CONFIG_FILE);
  await writeFile(path, yaml, { mode: 0o644 });
  return path;
}
