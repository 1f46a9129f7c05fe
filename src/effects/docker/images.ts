import type Docker from 'dockerode';
import { pack as tarPack, type Pack } from 'tar-stream';
import { RuntimeFailure } from '../../shared/errors.js';
import type { ImagePlan } from '../../plan/schema.js';
import { PermanentEffectError } from '../types.js';
import { CREATED_BY, LABELS } from '../../shared/names.js';
import { imageExists } from './client.js';
import { withBuildGateway, type BuildEgress, type BuildRoute } from './build-gateway.js';
import { contextFileReader, contextHash, effectiveMode, type ImageSource } from '../../images/build-context.js';

/** Streams the context as a tar, one file at a time, so a 400 MB binary is never held in memory. */
function contextTar(src: ImageSource): Pack {
  const pack = tarPack();
  (async () => {
    for (const file of src.files) {
      const [{ size, open }, mode] = await Promise.all([contextFileReader(file), effectiveMode(file)]);
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ name: file.path, size, mode, mtime: new Date(0) }, (err) =>
          err ? reject(err) : resolve(),
        );
        open().on('error', reject).pipe(entry);
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
export interface EnsureImageOptions {
  onProgress?: (line: string) => void;
  labels?: Record<string, string>;
  /** The build gateway its RUN steps reach the network through; without one they get no network at all. */
  egress?: BuildEgress;
}

export function ensureImage(
  docker: Docker,
  src: ImageSource,
  plan: ImagePlan,
  opts: EnsureImageOptions = {},
): Promise<{ tag: string; cached: boolean }> {
  const running = inFlight.get(plan.tag);
  if (running) return running;
  const build = ensureImageOnce(docker, src, plan, opts).finally(() => inFlight.delete(plan.tag));
  inFlight.set(plan.tag, build);
  return build;
}

async function ensureImageOnce(
  docker: Docker,
  src: ImageSource,
  plan: ImagePlan,
  opts: EnsureImageOptions,
): Promise<{ tag: string; cached: boolean }> {
  if (await imageExists(docker, plan.tag)) return { tag: plan.tag, cached: true };
  // The tag names the content the CLI planned; a worker of another build (or files changed since) would
  // put different content under it.
  const hash = await contextHash(src);
  if (hash !== plan.context_hash) {
    throw new PermanentEffectError(
      `the ${src.name} image sources on this worker differ from the ones ${plan.tag} was planned from ` +
        '(the CLI and this worker run different claude-bottle builds, or the files changed since the start); ' +
        'run the same build on both and start again',
      `planned ${plan.context_hash}, found ${hash}`,
    );
  }

  const { egress } = opts;
  if (egress) await withBuildGateway(docker, egress, (route) => runBuild(docker, src, plan, opts, route));
  else await runBuild(docker, src, plan, opts, { networkmode: 'none', buildargs: {} });
  if (!(await imageExists(docker, plan.tag))) {
    throw new RuntimeFailure(`image build of ${plan.tag} finished but the tag does not exist`);
  }
  return { tag: plan.tag, cached: false };
}

/**
 * One build on the daemon's classic builder (the /build endpoint without `version=2`), which runs each RUN
 * step in a container on `route.networkmode`: a custom network's name is honoured there.
 */
async function runBuild(
  docker: Docker,
  src: ImageSource,
  plan: ImagePlan,
  opts: EnsureImageOptions,
  route: BuildRoute,
): Promise<void> {
  // tar-stream's Pack is a streamx Readable: pipe-compatible, but not typed as a Node stream.
  const stream: NodeJS.ReadableStream = await docker.buildImage(contextTar(src) as unknown as NodeJS.ReadableStream, {
    t: plan.tag,
    dockerfile: src.dockerfileInContext,
    labels: { [LABELS.createdBy]: CREATED_BY, [LABELS.contextHash]: plan.context_hash, ...opts.labels },
    rm: true,
    forcerm: true,
    networkmode: route.networkmode,
    buildargs: route.buildargs,
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
        if (event.error || event.errorDetail)
          failure = event.errorDetail?.message ?? event.error ?? 'unknown build error';
      },
    );
  }).catch((err: Error) => {
    throw new RuntimeFailure(`image build of ${plan.tag} was interrupted: ${err.message}`);
  });

  if (failure !== null) {
    const where = lastStep ? ` at "${lastStep}"` : '';
    throw new PermanentEffectError(
      `image build of ${plan.tag} failed${where}: ${String(failure).trim()}`,
      `dockerfile: ${src.dockerfile}`,
    );
  }
}
