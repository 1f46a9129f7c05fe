#!/usr/bin/env node
'use strict';
// Runs the bundled CLI (dist/cli-bundle/bottle.cjs) with V8's code cache.
// Node 20 keeps no compile cache of its own, and the bundle's modules are
// compiled lazily, so a cache taken when the script is compiled holds almost
// nothing (the v8-compile-cache package takes it then); one taken after a
// command has run holds every function that command compiled (measured here:
// loading and setting up `start` took ~60 ms instead of ~120 with the earlier
// ES-module chunks and no cache). One cache per command, written next
// to the bundle by its first successful run (and again whenever V8 rejects it,
// e.g. after a rebuild). Caching is best effort: a folder that is not writable only means
// every run compiles afresh.
const { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { createRequire, wrap } = require('node:module');
const { join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { Script, constants: vmConstants } = require('node:vm');

const bundleDir = join(__dirname, '..', 'dist', 'cli-bundle');
const bundle = join(bundleDir, 'bottle.cjs');
const cacheDir = join(bundleDir, 'code-cache');

/** The command word (`start`, `list`, ...), skipping global options and their values; a dry run runs other code. */
function commandName(argv) {
  const dryRun = argv.includes('--dry-run') ? '-dry-run' : '';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--manifest') i++;
    else if (/^[a-z][a-z-]{0,30}$/.test(argv[i])) return argv[i] + dryRun;
  }
  return 'none';
}

function loadBundle(cacheFile) {
  // V8 drops the bytecode of functions that have not run for a while (module bodies run once, at
  // the start), so a cache taken at exit would lack exactly those. V8 also rejects a cache made
  // under other flags: every run sets this one, before anything is compiled.
  setFlagsFromString('--no-flush-bytecode');
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache yet
  }
  // The build makes the bundle plain ASCII, so latin1 reads it exactly, without decoding.
  const script = new Script(wrap(readFileSync(bundle, 'latin1')), {
    filename: bundle,
    cachedData,
    // import() inside the bundle (ink, the dashboard view) resolves as it would in a module loaded by require().
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const needsCache = cachedData === undefined || script.cachedDataRejected === true;
  const module = { exports: {}, filename: bundle, id: bundle, loaded: false };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, bundleDir);
  return { exports: module.exports, script, needsCache };
}

function saveCache(script, cacheFile) {
  const partial = `${cacheFile}.${process.pid}`;
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(partial, script.createCachedData());
    renameSync(partial, cacheFile);
  } catch {
    // best effort (read-only install, full disk): the next run compiles again
    try {
      rmSync(partial, { force: true });
    } catch {
      // nothing was written
    }
  }
}

async function run() {
  if (!existsSync(bundle)) {
    process.stderr.write(`bottle: this installation is not built (no ${bundle}); run \`npm run build\` in ${join(__dirname, '..')}\n`);
    process.exit(1);
  }
  const cacheFile = join(cacheDir, `${commandName(process.argv.slice(2))}.bin`);
  const { exports, script, needsCache } = loadBundle(cacheFile);
  if (process.env.CLAUDE_BOTTLE_TRACE) process.stderr.write(`[trace ${performance.now().toFixed(0)} ms] bundle loaded${needsCache ? ' (no usable code cache)' : ''}\n`);
  const code = await exports.main(process.argv);
  // Only a run that did its work leaves a cache (not a typo's, not an early refusal's).
  if (needsCache && code === 0) saveCache(script, cacheFile);
  // Piped stdout is asynchronous: wait until everything written has been
  // flushed (a write's callback runs after the writes before it), then exit so
  // open handles (Redis, Docker sockets) cannot keep a finished command alive.
  await new Promise((resolve) => process.stdout.write('', resolve));
  await new Promise((resolve) => process.stderr.write('', resolve));
  process.exit(code);
}

run();
