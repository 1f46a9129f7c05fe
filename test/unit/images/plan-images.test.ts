import { chmod, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contextHash, type ImageSource } from '../../../src/images/build-context.js';
import { agentImageSource, imagePlan } from '../../../src/images/sources.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-context-'));
  await mkdir(join(dir, 'bottles', '.git'), { recursive: true });
  await mkdir(join(dir, 'bottles', 'node_modules', 'x'), { recursive: true });
  await mkdir(join(dir, 'bottles', 'files'), { recursive: true });
  await writeFile(join(dir, 'bottles', 'dev.Dockerfile'), 'FROM debian:bookworm-slim\nCOPY files/a.txt /a.txt\n');
  await writeFile(join(dir, 'bottles', 'files', 'a.txt'), 'a\n');
  await writeFile(join(dir, 'bottles', '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await writeFile(join(dir, 'bottles', 'node_modules', 'x', 'index.js'), '');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('agentImageSource for a custom Dockerfile', () => {
  it('uses the Dockerfile folder as context, like docker build -f, skipping .git and node_modules', () => {
    const src = agentImageSource({ dockerfile: join(dir, 'bottles', 'dev.Dockerfile'), bottle: 'dev' });
    expect(src).toMatchObject({
      name: 'dev',
      builtin: false,
      dockerfile: join(dir, 'bottles', 'dev.Dockerfile'),
      dockerfileInContext: 'dev.Dockerfile',
    });
    expect(src.files.map((f) => f.path).sort()).toEqual(['dev.Dockerfile', 'files/a.txt']);
  });

  it('swaps in a per-bottle Dockerfile on resume and keeps the rest of the context', async () => {
    const stateDockerfile = join(dir, 'state-Dockerfile');
    await writeFile(stateDockerfile, 'FROM debian:bookworm-slim\nCOPY files/a.txt /a.txt\nRUN echo approved\n');
    const original = agentImageSource({ dockerfile: join(dir, 'bottles', 'dev.Dockerfile'), bottle: 'dev' });
    const resumed = agentImageSource({
      dockerfile: join(dir, 'bottles', 'dev.Dockerfile'),
      stateDockerfile,
      bottle: 'dev',
    });
    expect(resumed.dockerfile).toBe(stateDockerfile);
    expect(resumed.files.find((f) => f.path === 'dev.Dockerfile')?.source).toBe(stateDockerfile);
    expect(resumed.files.map((f) => f.path).sort()).toEqual(original.files.map((f) => f.path).sort());
    expect((await imagePlan(resumed)).tag).not.toBe((await imagePlan(original)).tag);
  });
});

describe('contextHash', () => {
  const source = (files: ImageSource['files']): ImageSource => ({
    name: 't',
    dockerfile: '/x/Dockerfile',
    builtin: false,
    dockerfileInContext: 'Dockerfile',
    files,
  });

  it('does not depend on the order files are listed in', async () => {
    const a = { path: 'Dockerfile', source: join(dir, 'bottles', 'dev.Dockerfile') };
    const b = { path: 'files/a.txt', source: join(dir, 'bottles', 'files', 'a.txt') };
    expect(await contextHash(source([a, b]))).toBe(await contextHash(source([b, a])));
  });

  it('changes when a file changes, when a file is renamed, and when a file becomes executable', async () => {
    const file = join(dir, 'bottles', 'files', 'a.txt');
    const base = await contextHash(source([{ path: 'a.txt', source: file }]));
    expect(await contextHash(source([{ path: 'b.txt', source: file }]))).not.toBe(base);

    await chmod(file, 0o755);
    const executable = await contextHash(source([{ path: 'a.txt', source: file }]));
    expect(executable).not.toBe(base);

    await writeFile(file, 'changed\n');
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    expect(await contextHash(source([{ path: 'a.txt', source: file }]))).not.toBe(executable);
  });

  it('gives image tags of the form claude-bottle/<name>:<16 hex>', async () => {
    const plan = await imagePlan(
      agentImageSource({ dockerfile: join(dir, 'bottles', 'dev.Dockerfile'), bottle: 'dev' }),
    );
    expect(plan.tag).toMatch(/^claude-bottle\/dev:[0-9a-f]{16}$/);
    expect(plan.context_hash.startsWith(plan.tag.split(':')[1])).toBe(true);
  });
});
