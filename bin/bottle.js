#!/usr/bin/env node
'use strict';
// Runs the bundled CLI (dist/cli-bundle/bottle.cjs).
//
// Short-lived commands run it with V8's code cache. Node 20 keeps no compile cache of its own, and
// the bundle's modules are compiled lazily, so a cache taken when the script is compiled holds
// almost nothing (the v8-compile-cache package takes it then); one taken after a command has run
// holds every function that command compiled. One cache per command, written next to the bundle by
// its first successful run (and again whenever V8 rejects it, e.g. after a rebuild). Caching is best
// effort: a folder that is not writable only means every run compiles afresh.
//
// Long-running commands load the bundle with require(): start-up time hardly matters to them, and
// the cache needs a V8 flag that keeps every compiled function's bytecode for the life of the
// process. The dashboard also needs import() of ES modules (ink, its view), which a script compiled
// by vm.Script can only do through an experimental loader that prints a warning.
const { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { createRequire, wrap } = require('node:module');
const { join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { Script } = require('node:vm');

const bundleDir = join(__dirname, '..', 'dist', 'cli-bundle');
const bundle = join(bundleDir, 'bottle.cjs');
const cacheDir = join(bundleDir, 'code-cache');
const LONG_RUNNING_COMMANDS = new Set(['worker', 'dashboard']);

/** The command word (`start`, `list`, ...), skipping global options and their values. */
function commandName(argv) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--manifest') i++;
    else if (/^[a-z][a-z-]{0,30}$/.test(argv[i])) return argv[i];
  }
  return 'none';
}

function loadWithCodeCache(cacheFile) {
  // V8 drops the bytecode of functions that have not run for a while (module bodies run once, at
  // the start), so a cache taken at exit would lack exactly those. V8 also rejects a cache made
  // under other flags: every cached run sets this one, before anything is compiled.
  setFlagsFromString('--no-flush-bytecode');
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache yet
  }
  // The build makes the bundle plain ASCII, so latin1 reads it exactly, without decoding.
  const script = new Script(wrap(readFileSync(bundle, 'latin1')), { filename: bundle, cachedData });
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

function trace(message) {
  if (process.env.CLAUDE_BOTTLE_TRACE) process.stderr.write(`[trace ${performance.now().toFixed(0)} ms] ${message}\n`);
}

async function run() {
  if (!existsSync(bundle)) {
    process.stderr.write(`bottle: this installation is not built (no ${bundle}); run \`npm run build\` in ${join(__dirname, '..')}\n`);
    process.exit(1);
  }
  const argv = process.argv.slice(2);
  const command = commandName(argv);
  let code;
  if (LONG_RUNNING_COMMANDS.has(command)) {
    const { main } = require(bundle);
    trace('bundle loaded by require (no code cache)');
    code = await main(process.argv);
  } else {
    // A dry run runs other code than the command itself.
    const cacheFile = join(cacheDir, `${command}${argv.includes('--dry-run') ? '-dry-run' : ''}.bin`);
    const { exports, script, needsCache } = loadWithCodeCache(cacheFile);
    trace(`bundle loaded${needsCache ? ' (no usable code cache)' : ''}`);
    code = await exports.main(process.argv);
    // Only a run that did its work leaves a cache (not a typo's, not an early refusal's).
    if (needsCache && code === 0) saveCache(script, cacheFile);
  }
  // Piped stdout is asynchronous: wait until everything written has been
  // flushed (a write's callback runs after the writes before it), then exit so
  // open handles (Redis, Docker sockets) cannot keep a finished command alive.
  await new Promise((resolve) => process.stdout.write('', resolve));
  await new Promise((resolve) => process.stderr.write('', resolve));
  process.exit(code);
}

run();
