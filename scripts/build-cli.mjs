// Bundles the compiled CLI (dist/cli/main.js and everything it imports, most
// dependencies included) into one CommonJS file, dist/cli-bundle/bottle.cjs,
// which bin/bottle.js runs (short-lived commands through V8's code cache). One file parses in about
// half the time of ~600 separate modules, and every `bottle` invocation pays
// that cost before it does anything; CommonJS because only a classic script
// can be compiled with a code cache on Node 20 (vm.Script), and because each
// command module (loaded with import() in main.ts) then becomes a lazily
// initialised part of the file.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Packages left out of the bundle: node_modules supplies them when, and only when, code that needs
// them runs. The Docker client is large and loads its BuildKit (gRPC, protobufjs) and ssh:// (ssh2)
// support at once, which commands that never talk to Docker would otherwise parse on every run.
const DOCKER_CLIENT = ['dockerode', 'docker-modem', 'ssh2', 'cpu-features', '@grpc/*', 'protobufjs', 'tar-fs'];
// Native add-ons and wasm cannot be bundled; react is loaded by the dashboard only.
const COMMONJS_EXTERNALS = [...DOCKER_CLIENT, 'msgpackr-extract', 'react'];
// ES modules (ink awaits at the top level, so require() cannot load it): only the dashboard imports them.
const ES_MODULE_EXTERNALS = ['ink', 'yoga-layout'];

/**
 * esbuild keeps `import('dockerode')` of an external package as import(), which a script compiled
 * with vm.Script (bin/bottle.js's code cache) can only run through an experimental loader. For a
 * CommonJS package, require() at the same moment gives what Node's import() would: its exports as
 * the default export.
 */
const requireCommonJsOnImport = {
  name: 'require-commonjs-on-import',
  setup(b) {
    const isCommonJsExternal = (path) =>
      COMMONJS_EXTERNALS.some((name) =>
        name.endsWith('/*') ? path.startsWith(name.slice(0, -1)) : path === name || path.startsWith(`${name}/`),
      );
    b.onResolve({ filter: /^[@a-z]/ }, (args) => {
      if (args.kind !== 'dynamic-import' || !isCommonJsExternal(args.path)) return undefined;
      return { path: args.path, namespace: 'require-on-import' };
    });
    b.onLoad({ filter: /.*/, namespace: 'require-on-import' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/** Leaves `import('../dashboard-view.js')` to load dist/cli-bundle/dashboard-view.js at run time. */
const dashboardViewApart = {
  name: 'dashboard-view-apart',
  setup(b) {
    b.onResolve({ filter: /[\\/]dashboard-view\.js$/ }, () => ({ path: './dashboard-view.js', external: true }));
  },
};

// Also drops code caches taken of an earlier bundle.
rmSync('dist/cli-bundle', { recursive: true, force: true });
await build({
  entryPoints: ['dist/main.js'],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Two folders below the repository root, as dist/cli/ is, so modules that find
  // files relative to import.meta.url keep working (embedded.ts locates bin/bottle.js that way).
  outfile: 'dist/cli-bundle/bottle.cjs',
  external: [...COMMONJS_EXTERNALS, ...ES_MODULE_EXTERNALS],
  // jsonc-parser's main file is a UMD wrapper whose require() calls esbuild cannot follow (the bundle
  // would look for ./impl/*.js next to itself at run time); its ES module build bundles cleanly.
  alias: { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' },
  define: { 'import.meta.url': '__bottleModuleUrl' },
  banner: { js: "var __bottleModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [requireCommonJsOnImport, dashboardViewApart],
  // Whitespace and comments cost every run reading and hashing the file (the code cache
  // spares parsing, not that); names are kept, so --verbose stack traces still say where.
  minifyWhitespace: true,
  minifySyntax: true,
  // bin/bottle.js reads the bundle as latin1 (no UTF-8 decoding): it must be plain ASCII.
  charset: 'ascii',
  logLevel: 'warning',
});
if (readFileSync('dist/cli-bundle/bottle.cjs').some((byte) => byte > 0x7f))
  throw new Error('dist/cli-bundle/bottle.cjs is not plain ASCII');
// The dashboard's view is built on ink, which is ESM only (and awaits at the top
// level): it stays an ES module next to the bundle, imported when the dashboard opens.
// The CommonJS packages bundled into it (Redis's client, with the session it decides
// through) call require() for Node's own modules, which an ES module does not have:
// the banner gives it one, as Node gives every CommonJS module.
const ESM_REQUIRE = [
  "import { createRequire as __bottleCreateRequire } from 'node:module';",
  'const require = __bottleCreateRequire(import.meta.url);',
].join('\n');
await build({
  entryPoints: ['dist/cli/dashboard-view.js'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist/cli-bundle/dashboard-view.js',
  external: [...COMMONJS_EXTERNALS, ...ES_MODULE_EXTERNALS],
  banner: { js: ESM_REQUIRE },
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
