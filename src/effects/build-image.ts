import { basename, dirname, join } from 'node:path';
import { agentImageSource, gatewayImageSource } from '../images/sources.js';
import { ensureImage } from './docker/images.js';
import { namesStateDockerfile, readMetadata, stateLocations } from './state.js';
import type { EffectDeps, EffectHandler } from './types.js';

/** build_image: the agent and gateway images, built unless their tags already exist. */
export const buildImage =
  ({ docker }: EffectDeps): EffectHandler<'build_image'> =>
  async (_req, ctx) => {
    const { plan } = ctx;
    // The plan decides which Dockerfile the image comes from; a resumed plan names the per-bottle one in this
    // worker's state folder, whose build context is still the bottle's original folder (kept in metadata).
    const usesStateDockerfile = namesStateDockerfile(ctx.identity, plan.image.dockerfile);
    const baseDockerfile = usesStateDockerfile
      ? ((await readMetadata(ctx.identity))?.base_dockerfile ?? null)
      : plan.image.builtin
        ? null
        : plan.image.dockerfile;
    // A Dockerfile from the CLI's machine comes with its folder as an upload, unpacked here.
    const localBase = baseDockerfile
      ? join(await ctx.uploads.local(dirname(baseDockerfile), 'build-context'), basename(baseDockerfile))
      : undefined;
    const agentSource = agentImageSource({
      dockerfile: localBase,
      stateDockerfile: usesStateDockerfile ? stateLocations(ctx.identity).dockerfile : undefined,
      bottle: plan.bottle,
    });
    const onProgress = (line: string) => ctx.progress(line);
    const agent = await ensureImage(docker, agentSource, plan.image, { onProgress });
    const gateway = await ensureImage(docker, gatewayImageSource(), plan.gateway_image, { onProgress });
    const cached = agent.cached && gateway.cached;
    return [{ type: 'image.built', data: { tag: agent.tag, gateway_tag: gateway.tag, cached } }];
  };
