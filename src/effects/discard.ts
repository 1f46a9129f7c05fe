import type Docker from 'dockerode';
import type { BottlePlan } from '../plan/schema.js';
import { statusOf } from './docker/client.js';
import { removeBottleResources } from './docker/remove-bottle.js';
import { removeState } from './state.js';
import type { EffectDeps, EffectHandler } from './types.js';

interface ImageVerdict {
  removed: string[];
  kept: Array<{ tag: string; reason: string }>;
}

/**
 * The bottle's images that may go with it: its own agent image (a custom or approved Dockerfile's,
 * tagged by its bottle and content) unless another kept bottle uses the same tag. Built-in images are
 * shared by every bottle built from this installation, so they stay for `bottle cleanup` to judge.
 */
export function imagesToDiscard(
  plan: BottlePlan,
  usedByOthers: ReadonlySet<string>,
): ImageVerdict & {
  candidates: string[];
} {
  const verdict = { removed: [] as string[], kept: [] as ImageVerdict['kept'], candidates: [] as string[] };
  const images = [plan.image, plan.gateway_image].filter((i, n, all) => all.findIndex((j) => j.tag === i.tag) === n);
  for (const image of images) {
    if (image.builtin) verdict.kept.push({ tag: image.tag, reason: 'built-in, shared by every bottle' });
    else if (usedByOthers.has(image.tag)) verdict.kept.push({ tag: image.tag, reason: 'another bottle uses it' });
    else verdict.candidates.push(image.tag);
  }
  return verdict;
}

/** Removes each tag without forcing: an image a container still uses is kept and said so. */
async function removeTags(docker: Docker, tags: string[], verdict: ImageVerdict): Promise<void> {
  for (const tag of tags) {
    try {
      await docker.getImage(tag).remove();
      verdict.removed.push(tag);
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) verdict.removed.push(tag);
      else if (status === 409) verdict.kept.push({ tag, reason: 'a container uses it' });
      else throw err;
    }
  }
}

/**
 * discard: the operator throws a preserved or failed bottle away. Whatever a teardown left behind
 * goes first, then the images only this bottle used, then its state folder (the transcript with it),
 * so a discard that fails half-way can be asked again and still finds what to remove.
 */
export const discard =
  ({ docker }: EffectDeps): EffectHandler<'discard'> =>
  async (_req, ctx) => {
    await ctx.secrets.discard();
    await removeBottleResources(docker, ctx.identity);
    const usedByOthers = new Set(ctx.imagesOfOtherBottles ? await ctx.imagesOfOtherBottles() : []);
    const { candidates, ...verdict } = imagesToDiscard(ctx.plan, usedByOthers);
    await removeTags(docker, candidates, verdict);
    await removeState(ctx.identity);
    return [{ type: 'bottle.discarded', data: { images: verdict.removed, images_kept: verdict.kept } }];
  };
