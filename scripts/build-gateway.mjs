#!/usr/bin/env node
// Bundles the egress gateway into one CommonJS file for the gateway image,
// which runs Debian bookworm's Node 18 with no node_modules.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [resolve(root, 'src/gateway/main.ts')],
  outfile: resolve(root, 'dist/gateway/gateway.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  // Stack traces in the gateway's stderr should point at readable code.
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
});
