import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { BottlePlan, Upload } from '../plan/schema.js';
import { bottleHome } from '../shared/paths.js';
import { getBlob } from './store.js';
import { unpackTree, unpackedFile } from './tree.js';

/** The worker's side of uploads: a source the CLI sent is unpacked for the effect that reads it, then removed. */
export interface UploadedSources {
  /** Where to read `source` on this machine: its unpacked upload, or the path itself in plans without uploads. */
  local(source: string, reading: Upload['reading']): Promise<string>;
  /** Removes what `local` unpacked. */
  dispose(): Promise<void>;
}

export function uploadedSources(redis: Redis, plan: BottlePlan, home: string = bottleHome()): UploadedSources {
  const unpacked: string[] = [];
  return {
    async local(source, reading) {
      const upload = plan.uploads?.find((u) => u.source === source && u.reading === reading);
      if (!upload) return source;
      const root = join(home, 'uploads');
      await mkdir(root, { recursive: true, mode: 0o700 });
      const into = await mkdtemp(join(root, `${upload.blob.slice(0, 12)}-`));
      unpacked.push(into);
      await unpackTree(await getBlob(redis, upload.blob), into);
      return reading === 'file' ? unpackedFile(into) : into;
    },
    async dispose() {
      await Promise.all(unpacked.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
