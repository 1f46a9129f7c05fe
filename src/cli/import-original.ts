import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { EventData } from '../events/schema.js';
import { RuntimeFailure } from '../shared/errors.js';
import { IDENTITY_PATTERN } from '../shared/identity.js';
import { bottleHome, statePaths } from '../shared/paths.js';

/**
 * State folders the original (Python) claude-bottle preserved: `metadata.json` with `agent_name`, `cwd`,
 * `copy_cwd` and `started_at`; the bottle's `Dockerfile` after a capability change; `transcript/` (its
 * snapshot of /home/node/.claude); `.preserve`. They have no event log, so `list --all` shows them as
 * importable and `resume` imports one first (`bottle.imported`). Only this machine's state folder is
 * read: that is where the original kept them, and where the local worker resumes them. Nothing is deleted.
 */

const OriginalMetadataSchema = z.object({
  agent_name: z.string().min(1),
  cwd: z.string().min(1),
  copy_cwd: z.boolean(),
  started_at: z.string().min(1),
});

/** A Dockerfile this large is not the original's per-bottle Dockerfile. */
const MAX_DOCKERFILE_BYTES = 256 * 1024;

export interface ImportableFolder {
  identity: string;
  agent: string;
  started_at: string;
}

/** Folders under state/ that look like bottles and have no event log here. */
export function importableFolders(
  known: ReadonlySet<string>,
  env: NodeJS.ProcessEnv = process.env,
): ImportableFolder[] {
  const root = join(bottleHome(env), 'state');
  if (!existsSync(root)) return [];
  const found: ImportableFolder[] = [];
  for (const name of readdirSync(root).sort()) {
    if (known.has(name) || !IDENTITY_PATTERN.test(name)) continue;
    const metadata = join(root, name, 'metadata.json');
    if (!existsSync(metadata)) continue;
    const parsed = OriginalMetadataSchema.safeParse(readJson(metadata));
    found.push({
      identity: name,
      agent: parsed.success ? parsed.data.agent_name : name.replace(/-[0-9a-z]{5}$/, ''),
      started_at: parsed.success ? parsed.data.started_at : '',
    });
  }
  return found;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * What `bottle.imported` records of an original state folder, checked; a malformed folder is one line
 * saying what is wrong with it.
 */
export function readOriginalFolder(
  identity: string,
  env: NodeJS.ProcessEnv = process.env,
): EventData<'bottle.imported'> {
  const paths = statePaths(identity, env);
  const bad = (what: string) => new RuntimeFailure(`cannot import ${identity}: ${what}; nothing was changed`);
  if (!existsSync(paths.dir)) throw bad(`there is no state folder ${paths.dir}`);
  if (!existsSync(paths.metadata)) throw bad(`${paths.metadata} is missing`);
  const raw = readJson(paths.metadata);
  if (raw === undefined) throw bad(`${paths.metadata} is not valid JSON`);
  const metadata = OriginalMetadataSchema.safeParse(raw);
  if (!metadata.success) {
    const issue = metadata.error.issues[0];
    throw bad(`${paths.metadata}: ${issue.path.join('.') || 'the file'} ${issue.message.toLowerCase()}`);
  }
  const { agent_name: agent, cwd, copy_cwd, started_at } = metadata.data;
  if (!identity.startsWith(`${agent}-`))
    throw bad(`${paths.metadata} names agent ${JSON.stringify(agent)}, which does not match the identity`);
  let dockerfile: string | undefined;
  if (existsSync(paths.dockerfile)) {
    if (statSync(paths.dockerfile).size > MAX_DOCKERFILE_BYTES) throw bad(`${paths.dockerfile} is too large`);
    dockerfile = readFileSync(paths.dockerfile, 'utf8');
  }
  const transcript = existsSync(paths.transcript) && statSync(paths.transcript).isDirectory();
  return {
    agent,
    cwd,
    copy_cwd,
    started_at,
    host: hostname(),
    transcript,
    ...(dockerfile !== undefined ? { dockerfile } : {}),
  };
}
