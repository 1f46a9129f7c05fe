#!/usr/bin/env node
// Compiles src/agent-init/wait-for-proxy.c into a static binary that the worker
// copies into every agent container (it runs there before the agent's command).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = resolve(root, 'src/agent-init/wait-for-proxy.c');
const output = resolve(root, 'dist/agent-init/wait-for-proxy');
mkdirSync(dirname(output), { recursive: true });
const gcc = spawnSync('gcc', ['-static', '-Os', '-s', '-Wall', '-Wextra', '-Werror', '-o', output, source], {
  stdio: 'inherit',
});
if (gcc.error?.code === 'ENOENT') {
  console.error('build: gcc not found; run scripts/setup-env.sh as root (it installs gcc and libc6-dev)');
  process.exit(1);
}
if (gcc.status !== 0) {
  console.error(`build: gcc failed to compile ${source} (a static build needs libc6-dev)`);
  process.exit(1);
}
