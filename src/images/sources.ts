import { existsSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { ImagePlan } from '../plan/schema.js';
import { RuntimeFailure } from '../shared/errors.js';
import { STATE_DOCKERFILE } from '../shared/state-markers.js';
import {
  claudeBinaryPath,
  contextHash,
  type DigestCacheUse,
  folderFiles,
  repoRoot,
  type ContextFile,
  type ImageSource,
} from './build-context.js';
import { gatewayNodePath } from './gateway-node.js';

/**
 * What each claude-bottle image is built from, and the tag that content
 * hashes to. Reads files only: the plan's image tags come from here, and the
 * worker's build effect sends the same sources to Docker.
 */
export { contextHash, type ContextFile, type ImageSource } from './build-context.js';

export const BUILTIN_AGENT = 'builtin:agent';
export const BUILTIN_GATEWAY = 'builtin:gateway';
const TAG_HASH_LENGTH = 16;

/** Replaces (or adds) the context entry at `path`. */
function withFile(files: ContextFile[], file: ContextFile): ContextFile[] {
  return [...files.filter((f) => f.path !== file.path), file];
}

/**
 * The agent image's build context.
 * - builtin: images/agent/* plus the Claude Code binary as `claude`;
 * - `dockerfile`: that file's folder, like `docker build -f FILE DIR`;
 * - a resumed bottle whose capability change replaced its Dockerfile: the
 *   same context as the bottle's original image (`dockerfile` names the
 *   original), with the approved Dockerfile in place of the original, so its
 *   COPY lines still work. The worker reads it from its state folder
 *   (`stateDockerfile`); the CLI, which has no state folder, takes its text
 *   from the event log (`approvedDockerfile`, as the worker wrote it): both
 *   hash to the same tag.
 */
export function agentImageSource(opts: {
  dockerfile?: string;
  stateDockerfile?: string;
  approvedDockerfile?: string;
  bottle?: string;
}): ImageSource {
  const base = opts.dockerfile ? customSource(opts.dockerfile, opts.bottle) : builtinAgentSource();
  const replaced = (dockerfile: string, file: Omit<ContextFile, 'path'>): ImageSource => ({
    ...base,
    dockerfile,
    builtin: false,
    files: withFile(base.files, { path: base.dockerfileInContext, ...file }),
  });
  if (opts.approvedDockerfile !== undefined) {
    const content = Buffer.from(opts.approvedDockerfile, 'utf8');
    return replaced(STATE_DOCKERFILE, { source: STATE_DOCKERFILE, content });
  }
  if (!opts.stateDockerfile) return base;
  if (!existsSync(opts.stateDockerfile))
    throw new RuntimeFailure(`per-bottle Dockerfile ${opts.stateDockerfile} is missing`);
  return replaced(opts.stateDockerfile, { source: opts.stateDockerfile });
}

function builtinAgentSource(): ImageSource {
  const dir = join(repoRoot(), 'images', 'agent');
  if (!existsSync(join(dir, 'Dockerfile')))
    throw new RuntimeFailure(`built-in agent Dockerfile missing at ${dir}/Dockerfile; reinstall claude-bottle`);
  let files = folderFiles(dir);
  // Scripts installed into /usr/local/bin must be executable whatever the checkout's modes.
  files = files.map((f) => (f.path === 'bottle-demo' ? { ...f, mode: 0o755 } : f));
  files = withFile(files, { path: 'claude', source: claudeBinaryPath(), mode: 0o755 });
  return { name: 'agent', dockerfile: BUILTIN_AGENT, builtin: true, dockerfileInContext: 'Dockerfile', files };
}

function customSource(dockerfile: string, bottle?: string): ImageSource {
  const dir = dirname(dockerfile);
  const files = withFile(folderFiles(dir), {
    path: relative(dir, dockerfile).split(sep).join('/'),
    source: dockerfile,
  });
  return {
    name: bottle ?? basename(dir),
    dockerfile,
    builtin: false,
    dockerfileInContext: relative(dir, dockerfile).split(sep).join('/'),
    files,
  };
}

/**
 * The sidecar image: images/gateway/*, the bundled gateway (dist/gateway/gateway.cjs) and network
 * watch (dist/gateway/netwatch.cjs), and their Node.
 */
export function gatewayImageSource(): ImageSource {
  const root = repoRoot();
  const dir = join(root, 'images', 'gateway');
  const bundle = join(root, 'dist', 'gateway', 'gateway.cjs');
  const netwatch = join(root, 'dist', 'gateway', 'netwatch.cjs');
  const forwarder = join(root, 'dist', 'gateway', 'port-forwarder.cjs');
  for (const built of [bundle, netwatch, forwarder])
    if (!existsSync(built)) throw new RuntimeFailure(`gateway bundle missing: run npm run build (expected ${built})`);
  if (!existsSync(join(dir, 'Dockerfile')))
    throw new RuntimeFailure(`gateway Dockerfile missing at ${dir}/Dockerfile; reinstall claude-bottle`);
  let files = withFile(folderFiles(dir), { path: 'gateway.cjs', source: bundle });
  files = withFile(files, { path: 'netwatch.cjs', source: netwatch });
  files = withFile(files, { path: 'port-forwarder.cjs', source: forwarder });
  files = withFile(files, { path: 'node', source: gatewayNodePath(), mode: 0o755 });
  return { name: 'gateway', dockerfile: BUILTIN_GATEWAY, builtin: true, dockerfileInContext: 'Dockerfile', files };
}

export async function imagePlan(src: ImageSource, cache: DigestCacheUse = { persist: true }): Promise<ImagePlan> {
  const hash = await contextHash(src, cache);
  return {
    tag: `claude-bottle/${src.name}:${hash.slice(0, TAG_HASH_LENGTH)}`,
    context_hash: hash,
    dockerfile: src.dockerfile,
    builtin: src.builtin,
  };
}
