// An esbuild plugin for the CLI bundle: modules dockerode loads that serve
// features claude-bottle never uses on its launch path (BuildKit sessions over
// gRPC, BuildKit progress decoding with protobufjs, and DOCKER_HOST=ssh://).
// Loading them at import costs ~85 ms of every `bottle` command on a 2-core
// machine, and merely bundling them (over a megabyte of code V8 must parse)
// costs ~20 ms more; so their require() calls are deferred to first use, and
// the dockerode files behind them load from node_modules then, outside the
// bundle (see `external` in build-cli.mjs). All three features still work
// when asked for.
// Dependency versions are pinned: if the expected text is not found the build
// fails instead of silently bundling the slow path.
import { readFile } from 'node:fs/promises';

const DEFERRALS = [
  {
    file: /node_modules[\\/]dockerode[\\/]lib[\\/]docker\.js$/,
    replacements: [
      {
        from: "withSession = require('./session'),",
        to: "withSession = function () { return require('dockerode/lib/session').apply(this, arguments); },",
      },
      {
        from: "var buildkit = require('./buildkit');",
        to: "var buildkit = require('dockerode/lib/buildkit');",
      },
    ],
  },
  {
    file: /node_modules[\\/]docker-modem[\\/]lib[\\/]ssh\.js$/,
    replacements: [
      {
        from: "var Client = require('ssh2').Client,",
        // `new Client()` returns the object the function returns.
        to: "var Client = function () { return new (require('ssh2').Client)(); },",
      },
    ],
  },
];

/** The dockerode files the deferred requires name: external to the bundle, resolved from node_modules. */
export const DEFERRED_EXTERNALS = ['dockerode/lib/session', 'dockerode/lib/buildkit'];

export const deferRequires = {
  name: 'defer-requires',
  setup(build) {
    for (const { file, replacements } of DEFERRALS) {
      build.onLoad({ filter: file }, async (args) => {
        let source = await readFile(args.path, 'utf8');
        for (const { from, to } of replacements) {
          if (!source.includes(from)) {
            throw new Error(`defer-requires: ${args.path} no longer contains ${JSON.stringify(from)}; update scripts/defer-requires.mjs for this dependency version`);
          }
          source = source.replace(from, to);
        }
        return { contents: source, loader: 'js' };
      });
    }
  },
};
