import { existsSync } from 'node:fs';
import { bottleKeys } from '../event-store/keys.js';
import { loadManifest } from '../manifest/load.js';
import { UsageError } from '../shared/errors.js';
import { parseIdentity } from '../shared/identity.js';
import { redisTarget } from '../shared/redis-target.js';
import { probeRedis } from '../engine/redis.js';

/**
 * Validates an identity given to events, replay, stop, approve or deny before
 * anything is created: its shape (exit 2), then its agent against the
 * manifest (exit 2). A bottle whose agent has since left the manifest is
 * still accepted when its log exists, so renaming an agent never orphans a
 * running bottle; that look-up starts nothing (an embedded Redis that is not
 * running cannot hold the bottle). Without a loadable manifest only the shape
 * is checked: the log is the source of truth for these commands.
 */
export async function checkIdentityArg(
  raw: string,
  opts: { manifestPath?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const env = opts.env ?? process.env;
  const { identity, agent } = parseIdentity(raw);
  let known: string[];
  let manifestPath: string;
  try {
    const loaded = await loadManifest({ path: opts.manifestPath, env });
    known = loaded.manifest.agents.map((a) => a.name);
    manifestPath = loaded.path;
  } catch {
    return identity;
  }
  if (known.includes(agent) || (await bottleExists(identity, env))) return identity;
  throw new UsageError(
    `invalid identity ${JSON.stringify(raw)}: no agent named ${JSON.stringify(agent)} in ${manifestPath} ` +
      `(known: ${known.join(', ') || 'none'}) and no such bottle`,
  );
}

async function bottleExists(identity: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const target = redisTarget(env);
  if (target.kind === 'embedded' && !existsSync(target.socket)) return false;
  const redis = probeRedis(target);
  try {
    await redis.connect();
    return (await redis.exists(bottleKeys(identity).events)) === 1;
  } catch {
    // Unreachable Redis: the command itself reports that in one clear line.
    return true;
  } finally {
    redis.disconnect();
  }
}
