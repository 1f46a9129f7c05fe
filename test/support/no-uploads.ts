import type { UploadedSources } from '../../src/blobs/materialize.js';

/** For effects run directly in tests: sources are read where the plan names them, as in plans without uploads. */
export const noUploads: UploadedSources = {
  local: async (source) => source,
  dispose: async () => undefined,
};
