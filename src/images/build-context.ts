import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import { bottleHome } from '../shared/paths.js';

/**
 * What goes into one image build: the files of the build context (each read
 * from a host path, or given in memory) and which of them is the Dockerfile.
 * The context hash, and so the image tag, is a function of exactly these files.
 */
export interface ContextFile {
  /** Path inside the build context, `/`-separated. */
  path: string;
  /**
   * Absolute host path the content is read from; for a file given in memory,
   * where its content came from (shown in messages, never read).
   */
  source: string;
  /** The content itself, instead of reading `source`: hashes as the same bytes on disk would. */
  content?: Buffer;
  /** Tar entry mode; defaults from the host file (0755 if executable, else 0644; 0644 for content in memory). */
  mode?: number;
}

export interface ImageSource {
  /** Image repository name under `claude-bottle/`. */
  name: string;
  /** Absolute Dockerfile path, or `builtin:agent` / `builtin:gateway`. */
  dockerfile: string;
  builtin: boolean;
  /** Where the Dockerfile sits inside the context (the build's `dockerfile` option). */
  dockerfileInContext: string;
  files: ContextFile[];
}

/** The repository root, found by walking up from this module: works from src/ (vitest) and from dist/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'claude-bottle') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new RuntimeFailure(
        'cannot find the claude-bottle installation folder (no package.json named claude-bottle above this module)',
      );
    dir = parent;
  }
}

const SKIPPED_DIRS = new Set(['.git', 'node_modules']);

/** `path` is `folder` or lies under it (both real paths). */
function within(folder: string, path: string): boolean {
  return path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}

/**
 * Every regular file under `dir`, as context files rooted at the folder (like
 * `docker build DIR`). Synchronous: a plan is resolved once per command and
 * image sources are plain values.
 *
 * A symbolic link whose target (fully resolved) leaves the folder is refused:
 * followed, it would copy any host file the link names into the image. A link
 * that stays inside is kept as the file it points to (its content is already
 * part of the context, so nothing new gets in), read from the resolved path so
 * that the link cannot be swapped for an outside one between plan and build.
 */
export function folderFiles(dir: string, prefix = ''): ContextFile[] {
  const out: ContextFile[] = [];
  const root = realpathSync(dir);
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const abs = join(current, entry.name);
      const rel = prefix + relative(dir, abs).split(sep).join('/');
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(abs);
      } else if (entry.isFile()) {
        out.push({ path: rel, source: abs });
      } else if (entry.isSymbolicLink() && !SKIPPED_DIRS.has(entry.name)) {
        const target = linkTarget(abs);
        if (target === undefined) continue;
        if (!within(root, target)) {
          throw new UsageError(
            `build context ${dir}: ${rel} is a symbolic link to ${target}, outside the context folder; ` +
              'copy the file into the folder instead (docker build refuses such links too)',
          );
        }
        if (statSync(target).isFile()) out.push({ path: rel, source: target });
      }
    }
  };
  walk(dir);
  return out;
}

/** Where a link finally points; undefined for a dangling link (nothing to copy, as before). */
function linkTarget(link: string): string | undefined {
  try {
    return realpathSync(link);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new UsageError(`build context: ${link} is a symbolic link that loops; remove it`);
    throw err;
  }
}

/** The Claude Code native binary installed by npm, shipped into the agent image. */
export function claudeBinaryPath(): string {
  const require = createRequire(join(repoRoot(), 'package.json'));
  let pkgJson: string;
  try {
    pkgJson = require.resolve('@anthropic-ai/claude-code-linux-x64/package.json');
  } catch {
    throw new RuntimeFailure(
      'Claude Code binary missing (@anthropic-ai/claude-code-linux-x64 is not installed): run `npm ci`',
    );
  }
  const binary = join(dirname(pkgJson), 'claude');
  if (!existsSync(binary)) throw new RuntimeFailure(`Claude Code binary missing at ${binary}: run \`npm ci\``);
  return binary;
}

/** Mode recorded for a file: only "executable or not" matters, so hashes agree across checkouts and umasks. */
export async function effectiveMode(file: ContextFile): Promise<number> {
  if (file.mode !== undefined) return file.mode;
  if (file.content !== undefined) return 0o644;
  const s = await stat(file.source);
  return s.mode & 0o111 ? 0o755 : 0o644;
}

const digestCache = new Map<string, string>();

/** Whether big files' digests may be written to the cache folder (a dry run writes nothing). */
export interface DigestCacheUse {
  persist: boolean;
}

/** Files at least this big have their digest remembered across processes. */
const PERSISTED_DIGEST_MIN_BYTES = 1024 * 1024;

function persistedDigestsPath(): string {
  return join(bottleHome(), 'cache', 'digests.json');
}

function readPersistedDigests(): Record<string, string> {
  try {
    const parsed = JSON.parse(readFileSync(persistedDigestsPath(), 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

function persistDigest(source: string, key: string, digest: string): void {
  try {
    // One entry per file: a reinstalled binary (new mtime or inode) replaces the old one.
    const all = Object.fromEntries(
      Object.entries(readPersistedDigests()).filter(([k]) => !k.startsWith(`${source}\0`)),
    );
    all[key] = digest;
    const path = persistedDigestsPath();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all));
    renameSync(tmp, path);
  } catch {
    // A cache that cannot be written only costs a re-hash next time.
  }
}

/**
 * sha256 of one file, cached by (path, size, mtime, inode): the Claude Code
 * binary is ~400 MB and every `bottle start` plans its image, so big files'
 * digests are also kept under $CLAUDE_BOTTLE_HOME/cache between processes.
 */
export async function fileDigest(source: string, cache: DigestCacheUse = { persist: true }): Promise<string> {
  const s = await stat(source);
  const key = `${source}\0${s.size}\0${s.mtimeMs}\0${s.ino}`;
  const cached = digestCache.get(key);
  if (cached) return cached;
  const big = s.size >= PERSISTED_DIGEST_MIN_BYTES;
  if (big) {
    const persisted = readPersistedDigests()[key];
    if (persisted) {
      digestCache.set(key, persisted);
      return persisted;
    }
  }
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(source)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve());
  });
  const digest = hash.digest('hex');
  digestCache.set(key, digest);
  if (big && cache.persist) persistDigest(source, key, digest);
  return digest;
}

/** sha256 of a context file's content, wherever that content is. */
function contextFileDigest(file: ContextFile, cache: DigestCacheUse): Promise<string> {
  if (file.content !== undefined) return Promise.resolve(createHash('sha256').update(file.content).digest('hex'));
  return fileDigest(file.source, cache);
}

/** A context file's size, and how to stream its content into the build's tar. */
export async function contextFileReader(
  file: ContextFile,
): Promise<{ size: number; open: () => NodeJS.ReadableStream }> {
  const { content } = file;
  if (content !== undefined) return { size: content.length, open: () => Readable.from([content]) };
  return { size: (await stat(file.source)).size, open: () => createReadStream(file.source) };
}

/** Content hash of a build context: sha256 over sorted (path, mode, sha256(content)) and the Dockerfile location. */
export async function contextHash(src: ImageSource, cache: DigestCacheUse = { persist: true }): Promise<string> {
  const sorted = [...src.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  hash.update(`dockerfile\0${src.dockerfileInContext}\n`);
  for (const file of sorted) {
    const [mode, digest] = await Promise.all([effectiveMode(file), contextFileDigest(file, cache)]);
    hash.update(`${file.path}\0${mode.toString(8)}\0${digest}\n`);
  }
  return hash.digest('hex');
}
