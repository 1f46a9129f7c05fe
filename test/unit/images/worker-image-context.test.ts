import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');

/**
 * The compose worker image (images/worker/Dockerfile) copies node_modules through the repository's
 * .dockerignore, generated from package-lock.json: a dependency added or removed since must not
 * leave the image without a package (or with the dev tools).
 */
describe('the worker image build context', () => {
  it('.dockerignore is what images/worker/write-dockerignore.mjs makes of package-lock.json', () => {
    const check = spawnSync(process.execPath, [join(root, 'images/worker/write-dockerignore.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(check.status, check.stderr).toBe(0);
  });

  it('lets in the packages the worker loads outside the bundle, and no dev tool', () => {
    const lines = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    for (const name of ['dockerode', 'ssh2', 'msgpackr-extract', '@anthropic-ai/claude-code-linux-x64'])
      expect(lines).toContain(`!node_modules/${name}`);
    for (const name of ['typescript', 'vitest', 'esbuild', 'eslint'])
      expect(lines).not.toContain(`!node_modules/${name}`);
  });
});
