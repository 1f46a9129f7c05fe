import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dockerClient } from '../../effects/docker/client.js';
import { bottleStatus } from '../../machines/index.js';
import { loadManifest } from '../../manifest/load.js';
import { resolvePlan } from '../../plan/resolve.js';
import { RuntimeFailure } from '../../shared/errors.js';
import { parseIdentity } from '../../shared/identity.js';
import { statePaths } from '../../shared/paths.js';
import type { CliIO } from '../io.js';
import { resolveSecrets, writeSecretsForWorker } from '../secrets.js';
import { openSession } from '../session.js';
import { launchAndAttach, routeSources } from './start.js';

interface StoredMetadata {
  agent: string;
  cwd: string;
  copy_cwd: boolean;
  manifest_path?: string;
  plan?: { manifest_path?: string };
}

/** Statuses a bottle can be resumed from: its container is gone and its state was kept. */
const RESUMABLE = new Set(['preserved', 'failed']);

export async function runResume(opts: { identity: string; manifestPath?: string; detach: boolean; args: string[] }, io: CliIO): Promise<number> {
  const { identity } = parseIdentity(opts.identity);
  const paths = statePaths(identity);
  if (!existsSync(paths.metadata)) {
    throw new RuntimeFailure(`no saved state for ${identity}: ${paths.metadata} does not exist (only crashed, stopped or capability-blocked bottles keep state)`);
  }
  const metadata = JSON.parse(readFileSync(paths.metadata, 'utf8')) as StoredMetadata;
  const manifestPath = opts.manifestPath ?? metadata.plan?.manifest_path ?? metadata.manifest_path;
  const loaded = await loadManifest({ path: manifestPath });
  const docker = dockerClient();
  const continueArgs = ['--continue', ...opts.args];
  const plan = await resolvePlan({
    loaded,
    agent: metadata.agent,
    cwd: metadata.cwd,
    copyCwd: metadata.copy_cwd,
    identity,
    docker,
    args: continueArgs,
    stateDockerfile: existsSync(paths.dockerfile) ? paths.dockerfile : undefined,
  });
  // Hosts approved through a capability request join the allowlist on resume.
  const extraPath = join(paths.dir, 'egress-extra.json');
  if (existsSync(extraPath)) {
    const extra = JSON.parse(readFileSync(extraPath, 'utf8')) as { hosts?: string[] };
    plan.hosts = [...new Set([...plan.hosts, ...(extra.hosts ?? [])])].sort();
  }
  const secrets = resolveSecrets(plan, routeSources(loaded, plan));

  const session = await openSession({ needWorker: true, say: (l) => io.stderr(l) });
  try {
    const live = await session.log.liveState(identity);
    if (live && !RESUMABLE.has(live.value)) {
      throw new RuntimeFailure(`${identity} is ${bottleStatus(live)}; only preserved or failed bottles can be resumed`);
    }
    const afterSeq = await session.log.lastSeq(identity);
    writeSecretsForWorker(identity, secrets);
    await session.enqueueCommand(identity, { type: 'bottle.resume_requested', data: { plan } });
    if (opts.detach) io.stdout(identity);
    else io.stderr(`bottle ${identity}: resuming`);
    return await launchAndAttach(session, plan, opts.detach, io, afterSeq);
  } finally {
    await session.close();
  }
}
