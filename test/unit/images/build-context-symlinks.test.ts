import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { folderFiles } from '../../../src/images/build-context.js';
import { UsageError } from '../../../src/shared/errors.js';

let root: string;
let context: string;
let outside: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'cb-context-'));
  context = join(root, 'bottle');
  outside = join(root, 'host-secrets');
  mkdirSync(join(context, 'conf'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  writeFileSync(join(context, 'conf', 'app.conf'), 'ok\n');
  writeFileSync(join(outside, 'id_ed25519'), 'PRIVATE KEY\n');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('a Dockerfile folder with symbolic links', () => {
  it('refuses a link to a file outside the folder, naming the link and its target', () => {
    symlinkSync(join(outside, 'id_ed25519'), join(context, 'key'));
    expect(() => folderFiles(context)).toThrow(UsageError);
    expect(() => folderFiles(context)).toThrow(
      /key is a symbolic link to .*host-secrets\/id_ed25519, outside the context folder/,
    );
  });

  it('refuses a relative link that climbs out, and a link to an outside folder', () => {
    symlinkSync('../../host-secrets/id_ed25519', join(context, 'conf', 'sneaky'));
    expect(() => folderFiles(context)).toThrow(/conf\/sneaky is a symbolic link/);
    rmSync(join(context, 'conf', 'sneaky'));
    symlinkSync(outside, join(context, 'secrets'));
    expect(() => folderFiles(context)).toThrow(/secrets is a symbolic link/);
  });

  it('refuses a chain of links that ends outside, even through a link that stays inside', () => {
    symlinkSync(join(outside, 'id_ed25519'), join(context, 'conf', 'hop'));
    symlinkSync('conf/hop', join(context, 'innocent'));
    expect(() => folderFiles(context)).toThrow(/symbolic link to .*host-secrets/);
  });

  it('keeps a link inside the folder as the file it points to, read from the resolved path', () => {
    symlinkSync('conf/app.conf', join(context, 'app.conf'));
    const files = new Map(folderFiles(context).map((f) => [f.path, f.source]));
    expect([...files.keys()].sort()).toEqual(['Dockerfile', 'app.conf', 'conf/app.conf']);
    expect(files.get('app.conf')).toBe(files.get('conf/app.conf'));
  });

  it('refuses a link that loops, with a clear error', () => {
    symlinkSync(join(context, 'b'), join(context, 'a'));
    symlinkSync(join(context, 'a'), join(context, 'b'));
    expect(() => folderFiles(context)).toThrow(UsageError);
    expect(() => folderFiles(context)).toThrow(/is a symbolic link that loops/);
  });

  it('skips a dangling link, as before', () => {
    symlinkSync(join(context, 'gone'), join(context, 'dangling'));
    expect(
      folderFiles(context)
        .map((f) => f.path)
        .sort(),
    ).toEqual(['Dockerfile', 'conf/app.conf']);
  });
});
