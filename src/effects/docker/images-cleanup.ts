import type Docker from 'dockerode';
import { CREATED_BY, LABELS } from '../../shared/names.js';
import { statusOf } from './client.js';

/**
 * Superseded images: every rebuild of the agent or gateway image (a new
 * build-context hash) leaves the previous `claude-bottle/<name>:<hash>`
 * behind, a few hundred MB each. An image is superseded when this tool built
 * it (its created-by label), it is not the newest of its repository, no
 * preserved or running bottle uses it (the caller's `inUse`, from the event
 * log) and the caller does not keep it (`keep`: the tags the current build
 * would use). Removal never forces: an image a container still uses (any
 * container, including ones this tool does not know) is skipped, not removed.
 */
export const IMAGE_REPOSITORY_PREFIX = 'claude-bottle/';

export interface ToolImage {
  tag: string;
  id: string;
  /** Unix seconds. */
  created: number;
  /** Everything the image needs, shared layers included. */
  size: number;
  /** The layers no other image uses: the least its removal frees. */
  uniqueSize: number;
}

export interface SupersededScan {
  superseded: ToolImage[];
  kept: Array<{ image: ToolImage; why: 'in use' | 'kept' | 'newest' }>;
  /** The least removing every superseded image frees (layers shared only among them count as shared). */
  reclaimableAtLeast: number;
}

export interface ImageRemoval {
  removed: ToolImage[];
  skipped: Array<{ image: ToolImage; reason: string }>;
  /** What the daemon's layer store shrank by while the images were removed. */
  bytesFreed: number;
}

interface DiskUsageImage {
  Id: string;
  RepoTags: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
  Labels: Record<string, string> | null;
}
interface DiskUsage {
  LayersSize?: number;
  Images?: DiskUsageImage[] | null;
}

/** Tagged images this tool built, one entry per tag (an image with two tags is listed twice). */
async function toolImages(docker: Docker, scope: (tag: string) => boolean): Promise<ToolImage[]> {
  const usage = (await docker.df()) as DiskUsage;
  const images: ToolImage[] = [];
  for (const image of usage.Images ?? []) {
    if (image.Labels?.[LABELS.createdBy] !== CREATED_BY) continue;
    for (const tag of image.RepoTags ?? []) {
      if (!tag.startsWith(IMAGE_REPOSITORY_PREFIX) || !scope(tag)) continue;
      const uniqueSize = image.SharedSize >= 0 ? Math.max(0, image.Size - image.SharedSize) : image.Size;
      images.push({ tag, id: image.Id, created: image.Created, size: image.Size, uniqueSize });
    }
  }
  return images;
}

const repositoryOf = (tag: string) => tag.slice(0, tag.lastIndexOf(':'));

export async function findSupersededImages(
  docker: Docker,
  opts: { inUse: Iterable<string>; keep?: Iterable<string>; scope?: (tag: string) => boolean },
): Promise<SupersededScan> {
  const inUse = new Set(opts.inUse);
  const keep = new Set(opts.keep ?? []);
  const images = await toolImages(docker, opts.scope ?? (() => true));
  const newest = new Map<string, ToolImage>();
  for (const image of images) {
    const repository = repositoryOf(image.tag);
    const current = newest.get(repository);
    if (!current || image.created > current.created) newest.set(repository, image);
  }
  const scan: SupersededScan = { superseded: [], kept: [], reclaimableAtLeast: 0 };
  for (const image of images.sort((a, b) => a.tag.localeCompare(b.tag))) {
    if (inUse.has(image.tag)) scan.kept.push({ image, why: 'in use' });
    else if (keep.has(image.tag)) scan.kept.push({ image, why: 'kept' });
    else if (newest.get(repositoryOf(image.tag)) === image) scan.kept.push({ image, why: 'newest' });
    else scan.superseded.push(image);
  }
  // An image whose other tag is kept frees nothing when this tag goes.
  const keptIds = new Set(scan.kept.map((k) => k.image.id));
  const freedIds = new Map(scan.superseded.filter((i) => !keptIds.has(i.id)).map((i) => [i.id, i.uniqueSize]));
  scan.reclaimableAtLeast = [...freedIds.values()].reduce((sum, n) => sum + n, 0);
  return scan;
}

/** Removes the given tags without forcing; the layers go once no tag or container needs them. */
export async function removeImages(docker: Docker, images: ToolImage[]): Promise<ImageRemoval> {
  const layersSize = async () => ((await docker.df()) as DiskUsage).LayersSize ?? 0;
  const before = await layersSize();
  const result: ImageRemoval = { removed: [], skipped: [], bytesFreed: 0 };
  for (const image of images) {
    try {
      await docker.getImage(image.tag).remove();
      result.removed.push(image);
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) result.removed.push(image);
      else if (status === 409) result.skipped.push({ image, reason: 'a container uses it' });
      else result.skipped.push({ image, reason: (err as Error).message });
    }
  }
  result.bytesFreed = Math.max(0, before - (await layersSize()));
  return result;
}
