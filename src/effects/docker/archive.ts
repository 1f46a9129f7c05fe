import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { statusOf } from './client.js';

/**
 * Copies a folder out of a container (running or stopped) with getArchive.
 * The tar comes from a container the agent controlled, so it is treated as
 * hostile: only regular files, folders and tame symlinks are written, and
 * nothing can land outside destDir.
 */
export interface SnapshotResult {
  files: number;
  bytes: number;
  /** The folder does not exist in the container (the agent never wrote one). */
  missing: boolean;
  /** Entries not written because they could escape destDir or are not plain files/folders/links. */
  refused: number;
}

/**
 * The archive's path below the copied folder, or undefined when it is not a
 * plain relative path. Docker names entries `<basename of the folder>/...`.
 */
export function safeRelativePath(entryName: string): string | undefined {
  if (entryName.startsWith('/') || entryName.includes('\0') || entryName.includes('\\')) return undefined;
  const parts = entryName.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) return undefined;
  return parts.slice(1).join('/');
}

/**
 * A symlink is kept only when it is relative and has no `..`: it then points
 * at or below its own folder, which is inside destDir. (A lexical check that
 * allowed `..` can be fooled by links through other links.)
 */
export function isTameLink(linkname: string): boolean {
  return (
    linkname !== '' && !linkname.startsWith('/') && !linkname.split('/').includes('..') && !linkname.includes('\0')
  );
}

/**
 * Decides, before a byte of it is written, whether a regular file is copied (false: it is read past and
 * not written); throwing ends the snapshot with nothing of it kept.
 */
export type AdmitFile = (path: string, bytes: number) => boolean;

export async function snapshotDir(
  docker: Docker,
  container: Docker.Container | string,
  sourcePath: string,
  destDir: string,
  admitFile: AdmitFile = () => true,
): Promise<SnapshotResult> {
  const target = typeof container === 'string' ? docker.getContainer(container) : container;
  let tar: NodeJS.ReadableStream;
  try {
    tar = await target.getArchive({ path: sourcePath });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
    // Docker answers 404 both for an absent path and an absent container; only the first is "missing".
    await target.inspect();
    return { files: 0, bytes: 0, missing: true, refused: 0 };
  }

  // Extract beside destDir and swap in at the end, so a retried snapshot never mixes two copies.
  const staging = `${destDir}.partial-${randomBytes(4).toString('hex')}`;
  await mkdir(staging, { recursive: true });
  const result: SnapshotResult = { files: 0, bytes: 0, missing: false, refused: 0 };
  const links = new Set<string>();
  const underLink = (rel: string) => {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) if (links.has(parts.slice(0, i).join('/'))) return true;
    return false;
  };

  const extractor = tarExtract();
  extractor.on('entry', (header, stream, next) => {
    const finish = (err?: unknown) => (err ? next(err as Error) : next());
    const skip = () => {
      result.refused++;
      stream.on('end', () => finish()).resume();
    };
    const rel = safeRelativePath(header.name);
    if (rel === undefined) return skip();
    if (rel === '') return stream.on('end', () => finish()).resume(); // the folder itself
    // Writing through a link we created could leave destDir.
    if (underLink(rel) || links.has(rel)) return skip();
    const out = join(staging, ...rel.split('/'));
    if (header.type === 'directory') {
      mkdir(out, { recursive: true, mode: 0o755 }).then(() => stream.on('end', () => finish()).resume(), finish);
    } else if (header.type === 'file') {
      let admitted: boolean;
      try {
        admitted = admitFile(rel, header.size ?? 0);
      } catch (err) {
        return finish(err);
      }
      if (!admitted) return stream.on('end', () => finish()).resume();
      mkdir(dirname(out), { recursive: true })
        .then(() => pipeline(stream, createWriteStream(out, { mode: (header.mode ?? 0o644) & 0o777 })))
        .then(() => {
          result.files++;
          result.bytes += header.size ?? 0;
          finish();
        }, finish);
    } else if (header.type === 'symlink' && header.linkname && isTameLink(header.linkname)) {
      links.add(rel);
      mkdir(dirname(out), { recursive: true })
        .then(() => symlink(header.linkname, out))
        .then(() => stream.on('end', () => finish()).resume(), finish);
    } else {
      skip();
    }
  });

  try {
    await pipeline(tar, extractor);
    await rm(destDir, { recursive: true, force: true });
    await mkdir(dirname(destDir), { recursive: true });
    await rename(staging, destDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return result;
}

/**
 * One regular file out of a container (created, running or stopped), or
 * undefined when the path is absent or not a regular file. Bounded: the
 * content comes from an image the manifest chose.
 */
export async function readContainerFile(
  container: Docker.Container,
  path: string,
  maxBytes = 4 * 1024 * 1024,
): Promise<Buffer | undefined> {
  let tar: NodeJS.ReadableStream;
  try {
    tar = await container.getArchive({ path });
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
  const extract = tarExtract();
  let content: Buffer | undefined;
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const wanted = content === undefined && header.type === 'file' && (header.size ?? 0) <= maxBytes;
    stream.on('data', (data: unknown) => {
      if (!wanted) return;
      const chunk = data as Buffer;
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    });
    stream.on('end', () => {
      if (wanted && size <= maxBytes) content = Buffer.concat(chunks);
      next();
    });
    stream.resume();
  });
  await pipeline(tar, extract);
  return content;
}
