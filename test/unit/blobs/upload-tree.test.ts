import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { pack as tarPack } from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { blobName, putBlob, UploadTooLargeError } from '../../../src/blobs/store.js';
import { packFile, packFolder, unpackedFile, unpackTree } from '../../../src/blobs/tree.js';
import { planSources, uploadPlanSources } from '../../../src/blobs/upload.js';
import { fakePlan } from '../../support/fake-plan.js';

const LIMIT = 1024 * 1024;
const made: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sampleFolder(): string {
  const dir = tempDir('cb-tree-src-');
  mkdirSync(join(dir, 'sub/deeper'), { recursive: true });
  writeFileSync(join(dir, 'README'), 'hello\n');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(dir, 'sub/deeper/data.bin'), Buffer.from([0, 1, 2, 255]));
  symlinkSync('../README', join(dir, 'sub/readme-link'));
  return dir;
}

async function tarOf(entries: Array<{ name: string; type?: 'file' | 'symlink'; linkname?: string }>) {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve) => pack.on('end', () => resolve(Buffer.concat(chunks))));
  for (const e of entries) {
    if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
    else pack.entry({ name: e.name }, 'x');
  }
  pack.finalize();
  return done;
}

describe('an uploaded folder', () => {
  it('unpacks to the same files, folders, modes and links (links kept as links)', async () => {
    const src = sampleFolder();
    const into = tempDir('cb-tree-out-');
    await unpackTree(await packFolder(src, 'copy', 'the folder', LIMIT), into);
    expect(readFileSync(join(into, 'README'), 'utf8')).toBe('hello\n');
    expect(lstatSync(join(into, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(into, 'sub/deeper/data.bin'))).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(lstatSync(join(into, 'sub/readme-link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(into, 'sub/readme-link'))).toBe('../README');
  });

  it('packs the same content to the same bytes, so it is sent once', async () => {
    const src = sampleFolder();
    const first = await packFolder(src, 'copy', 'the folder', LIMIT);
    const again = await packFolder(src, 'copy', 'the folder', LIMIT);
    expect(blobName(again)).toBe(blobName(first));
    writeFileSync(join(src, 'README'), 'changed\n');
    expect(blobName(await packFolder(src, 'copy', 'the folder', LIMIT))).not.toBe(blobName(first));
  });

  it('as a build context resolves links inside it to files and skips .git, as the image hash does', async () => {
    const src = sampleFolder();
    mkdirSync(join(src, '.git'));
    writeFileSync(join(src, '.git/HEAD'), 'ref\n');
    const into = tempDir('cb-tree-out-');
    await unpackTree(await packFolder(src, 'build-context', 'the context', LIMIT), into);
    expect(lstatSync(join(into, 'sub/readme-link')).isFile()).toBe(true);
    expect(() => lstatSync(join(into, '.git'))).toThrow();
  });

  it('over the limit fails before it is sent, naming what and the variable', async () => {
    const src = tempDir('cb-tree-big-');
    writeFileSync(join(src, 'big'), Buffer.alloc(LIMIT + 1));
    const packing = packFolder(src, 'copy', `the working folder ${src} (copy_cwd)`, LIMIT);
    await expect(packing).rejects.toBeInstanceOf(UploadTooLargeError);
    await expect(packing).rejects.toThrow(
      /working folder .* over the upload limit of 1 MiB \(CLAUDE_BOTTLE_UPLOAD_LIMIT_MB\)/,
    );
  });

  it('a single file unpacks to one file', async () => {
    const src = tempDir('cb-tree-file-');
    writeFileSync(join(src, 'prompt.md'), 'be brief\n');
    const into = tempDir('cb-tree-out-');
    await unpackTree(await packFile(join(src, 'prompt.md'), 'the prompt', LIMIT), into);
    expect(readFileSync(unpackedFile(into), 'utf8')).toBe('be brief\n');
  });
});

describe('unpacking refuses a tree that would write outside its folder', () => {
  it.each(['../escape', '/etc/escape', 'a/../../escape'])('an entry named %s', async (name) => {
    const into = tempDir('cb-tree-out-');
    await expect(unpackTree(await tarOf([{ name }]), into)).rejects.toThrow(/outside its folder/);
  });

  it('an entry below a symbolic link', async () => {
    const into = tempDir('cb-tree-out-');
    const tar = await tarOf([{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/planted' }]);
    await expect(unpackTree(tar, into)).rejects.toThrow(/below a symbolic link/);
  });
});

describe('what a plan uploads', () => {
  it('is the custom Dockerfile folder and the copied sources, never a bind mount or the transcript', () => {
    const plan = fakePlan('claude-bottle-demo-abcde');
    plan.image = { ...plan.image, builtin: false, dockerfile: '/work/proj/docker/Dockerfile' };
    plan.mounts = [
      { kind: 'bind', source: '/work/proj', target: '/work/proj', readonly: false, purpose: 'cwd' },
      {
        kind: 'copy',
        source: '/state/transcript',
        target: '/home/node/.claude',
        readonly: false,
        purpose: 'transcript',
      },
      { kind: 'copy', source: '/work/prompt.md', target: '/p', readonly: true, purpose: 'prompt' },
      { kind: 'copy', source: '/work/skills/x', target: '/s/x', readonly: true, purpose: 'skill' },
    ];
    expect(planSources(plan).map(({ source, reading }) => [source, reading])).toEqual([
      ['/work/proj/docker', 'build-context'],
      ['/work/prompt.md', 'file'],
      ['/work/skills/x', 'copy'],
    ]);
  });

  it('that cannot be read is named in one line, before anything is sent', async () => {
    const plan = fakePlan('claude-bottle-demo-abcde');
    const gone = join(tempDir('cb-tree-gone-'), 'prompt.md');
    plan.mounts = [{ kind: 'copy', source: gone, target: '/p', readonly: true, purpose: 'prompt' }];
    const neverUsed = {} as Redis;
    await expect(uploadPlanSources(neverUsed, plan)).rejects.toThrow(
      `cannot read the prompt ${gone} to send it to the worker (ENOENT)`,
    );
  });

  it("of a resumed bottle with an approved Dockerfile is its original Dockerfile's folder", () => {
    const plan = fakePlan('claude-bottle-demo-abcde');
    plan.image = { ...plan.image, builtin: false, dockerfile: 'state:Dockerfile' };
    expect(planSources(plan, '/work/proj/docker/Dockerfile').map(({ source }) => source)).toEqual([
      '/work/proj/docker',
    ]);
    expect(planSources(plan, null)).toEqual([]);
  });
});

describe('a blob', () => {
  it('already in Redis is not sent again: its expiry is renewed instead', async () => {
    const calls: string[] = [];
    const redis = {
      expire: async () => (calls.push('expire'), 1),
      set: async () => (calls.push('set'), 'OK'),
    } as unknown as Redis;
    const stored = await putBlob(redis, Buffer.from('same content'), 'the prompt', LIMIT);
    expect(stored).toMatchObject({ sent: false, blob: blobName(Buffer.from('same content')) });
    expect(calls).toEqual(['expire']);
  });

  it('not yet in Redis is sent once', async () => {
    const calls: string[] = [];
    const redis = {
      expire: async () => (calls.push('expire'), 0),
      set: async () => (calls.push('set'), 'OK'),
    } as unknown as Redis;
    expect(await putBlob(redis, Buffer.from('new content'), 'the prompt', LIMIT)).toMatchObject({ sent: true });
    expect(calls).toEqual(['expire', 'set']);
  });
});
