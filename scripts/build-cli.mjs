// Bundles the compiled CLI (dist/cli/main.js and everything it imports,
// dependencies included) into dist/cli-bundle/, loaded by bin/bottle.js.
// One file parses in about half the time of ~600 separate modules, and every
// `bottle` invocation pays that cost before it does anything.
// Packages with native add-ons or wasm stay external and load from node_modules.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFERRED_EXTERNALS, deferRequires } from './defer-requires.mjs';

// Chunk names carry a content hash: start from an empty folder so old chunks do not pile up.
rmSync('dist/cli-bundle', { recursive: true, force: true });
await build({
  entryPoints: ['dist/cli/main.js'],
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: 'dist/cli-bundle',
  // Entry and chunks all sit two folders below the repository root, as dist/cli/
  // does, so modules that find files relative to import.meta.url keep working
  // (embedded.ts locates bin/bottle.js that way).
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  external: ['cpu-features', 'ssh2', 'msgpackr-extract', 'ink', 'react', 'yoga-layout', ...DEFERRED_EXTERNALS],
  banner: { js: "import { createRequire as __bottleCreateRequire } from 'node:module'; const require = __bottleCreateRequire(import.meta.url);" },
  plugins: [deferRequires],
  logLevel: 'warning',
});

// The build identity workers publish in their heartbeat (src/shared/build-id.ts):
// everything a worker runs, i.e. the bundle and the gateway program it ships.
const hash = createHash('sha256');
for (const dir of ['dist/cli-bundle', 'dist/gateway']) {
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.js') && !name.endsWith('.cjs')) continue;
    hash.update(name);
    hash.update(readFileSync(join(dir, name)));
  }
}
writeFileSync('dist/build-id.txt', `${hash.digest('hex').slice(0, 16)}\n`);
