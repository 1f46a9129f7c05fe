import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile, chmod } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { effectiveMode, folderFiles } from '../images/build-context.js';
import { UploadTooLargeError } from './store.js';

/**
 * A folder or file from the CLI's machine as one deterministic tar: entries
 * sorted, owner and times zeroed, so the same content packs to the same bytes
 * (and so to the same blob). The worker unpacks it into a fresh folder.
 */
type TreeEntry =
  | { type: 'directory'; name: string; mode: number }
  | { type: 'file'; name: string; mode: number; content: Buffer }
  | { type: 'symlink'; name: string; linkname: string };

/** The name a single uploaded file has inside its tree. */
const SINGLE_FILE_NAME = 'file';

/** How a folder is read: as `docker build` reads a context, or as it is copied into a bottle (links kept). */
export type FolderReading = 'build-context' | 'copy';

class Budget {
  private used = 0;
  constructor(
    private readonly what: string,
    private readonly limit: number,
  ) {}
  spend(bytes: number): void {
    this.used += bytes;
    if (this.used > this.limit) throw new UploadTooLargeError(this.what, this.used, this.limit);
  }
}

async function copyTreeEntries(root: string, budget: Budget): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const walk = async (path: string, name: string): Promise<void> => {
    const s = await lstat(path);
    if (s.isSymbolicLink()) {
      entries.push({ type: 'symlink', name, linkname: await readlink(path) });
    } else if (s.isDirectory()) {
      if (name) entries.push({ type: 'directory', name, mode: s.mode & 0o7777 });
      for (const child of (await readdir(path)).sort())
        await walk(join(path, child), name ? `${name}/${child}` : child);
    } else if (s.isFile()) {
      budget.spend(s.size);
      entries.push({ type: 'file', name, mode: s.mode & 0o777, content: await readFile(path) });
    }
    // Sockets and fifos are not copied into a bottle either.
  };
  await walk(root, '');
  return entries;
}

async function buildContextEntries(root: string, budget: Budget): Promise<TreeEntry[]> {
  const files = folderFiles(root).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const entries: TreeEntry[] = [];
  for (const file of files) {
    const content = await readFile(file.source);
    budget.spend(content.length);
    entries.push({ type: 'file', name: file.path, mode: await effectiveMode(file), content });
  }
  return entries;
}

export async function packFolder(root: string, reading: FolderReading, what: string, limit: number): Promise<Buffer> {
  const budget = new Budget(what, limit);
  const entries = reading === 'copy' ? await copyTreeEntries(root, budget) : await buildContextEntries(root, budget);
  return packEntries(entries);
}

export async function packFile(path: string, what: string, limit: number): Promise<Buffer> {
  const s = await lstat(path);
  if (!s.isFile()) throw new Error(`${path} is not a regular file`);
  new Budget(what, limit).spend(s.size);
  return packEntries([{ type: 'file', name: SINGLE_FILE_NAME, mode: s.mode & 0o777, content: await readFile(path) }]);
}

function packEntries(entries: TreeEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (chunk) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  const base = { uid: 0, gid: 0, mtime: new Date(0) };
  for (const e of entries) {
    if (e.type === 'file') pack.entry({ ...base, name: e.name, type: 'file', mode: e.mode }, e.content);
    else if (e.type === 'directory') pack.entry({ ...base, name: e.name, type: 'directory', mode: e.mode });
    else pack.entry({ ...base, name: e.name, type: 'symlink', linkname: e.linkname, mode: 0o777 });
  }
  pack.finalize();
  return done;
}

/** A tar entry name that stays inside the folder it is unpacked into. */
function safeName(name: string): string {
  const normal = posix.normalize(name.replace(/\/+$/, ''));
  if (!normal || normal === '.' || normal.startsWith('/') || normal.split('/').includes('..')) {
    throw new Error(`uploaded tree holds an entry outside its folder: ${JSON.stringify(name)}`);
  }
  return normal;
}

async function readTree(tar: Buffer): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const extract = tarExtract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk) => chunks.push(chunk as Buffer));
      stream.on('end', () => {
        let name: string;
        try {
          name = safeName(header.name);
        } catch (err) {
          return next(err as Error);
        }
        const mode = (header.mode ?? 0o644) & 0o7777;
        if (header.type === 'file') entries.push({ type: 'file', name, mode, content: Buffer.concat(chunks) });
        else if (header.type === 'directory') entries.push({ type: 'directory', name, mode });
        else if (header.type === 'symlink') entries.push({ type: 'symlink', name, linkname: header.linkname ?? '' });
        else return next(new Error(`uploaded tree holds a ${header.type} entry (${JSON.stringify(header.name)})`));
        next();
      });
      stream.on('error', next);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(tar);
  await done;
  return entries;
}

/**
 * Unpacks a tree into `into` (an empty folder). Links are made last, and no
 * entry may lie below one, so nothing is ever written through a link; files
 * are created exclusively; folder modes are set once their content is in.
 */
export async function unpackTree(tar: Buffer, into: string): Promise<void> {
  const entries = await readTree(tar);
  const links = new Set(entries.filter((e) => e.type === 'symlink').map((e) => e.name));
  for (const e of entries) {
    const parts = e.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join('/'))) {
        throw new Error(`uploaded tree holds ${JSON.stringify(e.name)} below a symbolic link`);
      }
    }
  }
  for (const e of entries) {
    const path = join(into, e.name);
    if (e.type === 'directory') await mkdir(path, { recursive: true, mode: 0o700 });
    if (e.type === 'file') {
      await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
      await writeFile(path, e.content, { mode: e.mode, flag: 'wx' });
      await chmod(path, e.mode);
    }
  }
  for (const e of entries) if (e.type === 'symlink') await symlink(e.linkname, join(into, e.name));
  const folders = entries.filter((e) => e.type === 'directory').reverse();
  for (const e of folders) await chmod(join(into, e.name), e.mode);
}

/** Where an unpacked single-file tree keeps its file. */
export function unpackedFile(into: string): string {
  return join(into, SINGLE_FILE_NAME);
}
