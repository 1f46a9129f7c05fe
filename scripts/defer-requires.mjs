// An esbuild plugin for the CLI bundle: two modules dockerode loads at import
// time serve features claude-bottle never uses on its launch path (BuildKit
// sessions over gRPC, and DOCKER_HOST=ssh://). Loading them costs ~85 ms of
// every `bottle` command on a 2-core machine, so their require() calls are
// deferred to first use; both features still work when asked for.
// Dependency versions are pinned: if the expected text is not found the build
// fails instead of silently bundling the slow path.
import { readFile } from 'node:fs/promises';

const DEFERRALS = [
  {
    file: /node_modules[\\/]dockerode[\\/]lib[\\/]docker\.js$/,
    from: "withSession = require('./session'),",
    to: "withSession = function () { return require('./session').apply(this, arguments); },",
  },
  {
    file: /node_modules[\\/]docker-modem[\\/]lib[\\/]ssh\.js$/,
    from: "var Client = require('ssh2').Client,",
    // `new Client()` returns the object the function returns.
    to: "var Client = function () { return new (require('ssh2').Client)(); },",
  },
];

export const deferRequires = {
  name: 'defer-requires',
  setup(build) {
    for (const { file, from, to } of DEFERRALS) {
      build.onLoad({ filter: file }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes(from)) {
          throw new Error(`defer-requires: ${args.path} no longer contains ${JSON.stringify(from)}; update scripts/defer-requires.mjs for this dependency version`);
        }
        return { contents: source.replace(from, to), loader: 'js' };
      });
    }
  },
};
