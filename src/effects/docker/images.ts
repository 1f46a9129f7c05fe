import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type Docker from 'dockerode';
import { pack as tarPack, type Pack } from 'tar-stream';
import { RuntimeFailure } from '../../shared/errors.js';
import type { ImagePlan } from '../../plan/schema.js';
import { PermanentEffectError } from '../types.js';
import { CREATED_BY, LABELS } from '../../shared/names.js';
import { statusOf } from './status.js';
import {
  claudeBinaryPath,
  contextHash,
  gatewayNodePath,
  effectiveMode,
  folderFiles,
  repoRoot,
  type ContextFile,
  type ImageSource,
} from './build-context.js';

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
 * - `stateDockerfile` (a resumed bottle whose capability change wrote a new
 *   Dockerfile): the same context as the bottle's original image, with that
 *   Dockerfile in place of the original, so its COPY lines still work.
 */
export function agentImageSource(opts: { dockerfile?: string; stateDockerfile?: string; bottle?: string }): ImageSource {
  const base = opts.dockerfile ? customSource(opts.dockerfile, opts.bottle) : builtinAgentSource();
  if (!opts.stateDockerfile) return base;
  if (!existsSync(opts.stateDockerfile)) throw new RuntimeFailure(`per-bottle Dockerfile ${opts.stateDockerfile} is missing`);
  return {
    ...base,
    dockerfile: opts.stateDockerfile,
    builtin: false,
    files: withFile(base.files, { path: base.dockerfileInContext, source: opts.stateDockerfile }),
  };
}

function builtinAgentSource(): ImageSource {
  const dir = join(repoRoot(), 'images', 'agent');
  if (!existsSync(join(dir, 'Dockerfile'))) throw new RuntimeFailure(`built-in agent Dockerfile missing at ${dir}/Dockerfile; reinstall claude-bottle`);
  let files = folderFiles(dir);
  // Scripts installed into /usr/local/bin must be executable whatever the checkout's modes.
  files = files.map((f) => (f.path === 'bottle-demo' ? { ...f, mode: 0o755 } : f));
  files = withFile(files, { path: 'claude', source: claudeBinaryPath(), mode: 0o755 });
  return { name: 'agent', dockerfile: BUILTIN_AGENT, builtin: true, dockerfileInContext: 'Dockerfile', files };
}

function customSource(dockerfile: string, bottle?: string): ImageSource {
  const dir = dirname(dockerfile);
  const files = withFile(folderFiles(dir), { path: relative(dir, dockerfile).split(sep).join('/'), source: dockerfile });
  return {
    name: bottle ?? basename(dir),
    dockerfile,
    builtin: false,
    dockerfileInContext: relative(dir, dockerfile).split(sep).join('/'),
    files,
  };
}

/** The gateway sidecar image: images/gateway/* plus the bundled gateway (dist/gateway/gateway.cjs) and the Node that runs it. */
export function gatewayImageSource(): ImageSource {
  const root = repoRoot();
  const dir = join(root, 'images', 'gateway');
  const bundle = join(root, 'dist', 'gateway', 'gateway.cjs');
  if (!existsSync(bundle)) throw new RuntimeFailure(`gateway bundle missing: run npm run build (expected ${bundle})`);
  if (!existsSync(join(dir, 'Dockerfile'))) throw new RuntimeFailure(`gateway Dockerfile missing at ${dir}/Dockerfile; reinstall claude-bottle`);
  let files = withFile(folderFiles(dir), { path: 'gateway.cjs', source: bundle });
  files = withFile(files, { path: 'node', source: gatewayNodePath(), mode: 0o755 });
  return { name: 'gateway', dockerfile: BUILTIN_GATEWAY, builtin: true, dockerfileInContext: 'Dockerfile', files };
}

export async function imagePlan(src: ImageSource): Promise<ImagePlan> {
  const hash = await contextHash(src);
  return { tag: `claude-bottle/${src.name}:${hash.slice(0, TAG_HASH_LENGTH)}`, context_hash: hash, dockerfile: src.dockerfile, builtin: src.builtin };
}

/** Streams the context as a tar, one file at a time, so a 400 MB binary is never held in memory. */
function contextTar(src: ImageSource): Pack {
  const pack = tarPack();
  (async () => {
    for (const file of src.files) {
      const [s, mode] = await Promise.all([stat(file.source), effectiveMode(file)]);
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ name: file.path, size: s.size, mode, mtime: new Date(0) }, (err) => (err ? reject(err) : resolve()));
        createReadStream(file.source).on('error', reject).pipe(entry);
      });
    }
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack;
}

interface BuildEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

const inFlight = new Map<string, Promise<{ tag: string; cached: boolean }>>();

/**
 * Builds the image unless its tag already exists. Idempotent and safe to call
 * concurrently: calls in one process share one build; builds in two processes
 * both run to completion and tag identical content.
 */
export function ensureImage(
  docker: Docker,
  src: ImageSource,
  plan: ImagePlan,
  opts: { onProgress?: (line: string) => void; labels?: Record<string, string> } = {},
): Promise<{ tag: string; cached: boolean }> {
  const running = inFlight.get(plan.tag);
  if (running) return running;
  const build = ensureImageOnce(docker, src, plan, opts).finally(() => inFlight.delete(plan.tag));
  inFlight.set(plan.tag, build);
  return build;
}

async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

async function ensureImageOnce(
  docker: Docker,
  src: ImageSource,
  plan: ImagePlan,
  opts: { onProgress?: (line: string) => void; labels?: Record<string, string> },
): Promise<{ tag: string; cached: boolean }> {
  if (await imageExists(docker, plan.tag)) return { tag: plan.tag, cached: true };

  // tar-stream's Pack is a streamx Readable: pipe-compatible, but not typed as a Node stream.
  const stream: NodeJS.ReadableStream = await docker.buildImage(contextTar(src) as unknown as NodeJS.ReadableStream, {
    t: plan.tag,
    dockerfile: src.dockerfileInContext,
    labels: { [LABELS.createdBy]: CREATED_BY, [LABELS.contextHash]: plan.context_hash, ...opts.labels },
    rm: true,
    forcerm: true,
  });

  let lastStep = '';
  let failure: string | null = null;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (event: BuildEvent) => {
        if (event.stream) {
          for (const line of event.stream.split('\n')) {
            if (line.trim() === '') continue;
            if (/^Step \d+\/\d+ :/.test(line)) lastStep = line.trim();
            opts.onProgress?.(line);
          }
        }
        if (event.error || event.errorDetail) failure = event.errorDetail?.message ?? event.error ?? 'unknown build error';
      },
    );
  }).catch((err: Error) => {
    throw new RuntimeFailure(`image build of ${plan.tag} was interrupted: ${err.message}`);
  });

  if (failure !== null) {
    const where = lastStep ? ` at "${lastStep}"` : '';
    throw new PermanentEffectError(`image build of ${plan.tag} failed${where}: ${String(failure).trim()}`, `dockerfile: ${src.dockerfile}`);
  }
  if (!(await imageExists(docker, plan.tag))) {
    throw new RuntimeFailure(`image build of ${plan.tag} finished but the tag does not exist`);
  }
  return { tag: plan.tag, cached: false };
}
