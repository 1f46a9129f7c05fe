import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { standInTls } from './stand-in-tls.js';
import { freePort } from './upstream.js';

/**
 * Local stand-ins for the servers git, npm and pip talk to, behind one HTTPS
 * server whose leaf (for every stand-in name) is signed by a throwaway CA:
 * a git smart-HTTP server (`git http-backend` as CGI over a bare repository),
 * an npm registry (one packument and its tarball) and a PEP 503 simple index
 * (one page and its wheel). Each request is recorded by host, method and path,
 * so a test can show the tools' traffic reached the stand-in through the gateway.
 */

export const GIT_HOST = 'git.test';
export const NPM_HOST = 'npm.test';
export const PYPI_HOST = 'pypi.test';
export const PACKAGE = 'grants-demo';
export const VERSION = '1.0.0';
/** What the package's code and the repository's README say, so a test can find it after install. */
export const MARKER = 'made-by-the-package-standins';

export interface SeenRequest {
  host: string;
  method: string;
  path: string;
  status: number;
}

export interface PackageStandIns {
  port: number;
  /** The throwaway CA that signed the stand-ins' leaf, for CLAUDE_BOTTLE_UPSTREAM_CA. */
  caFile: string;
  /** The bare repository `git clone https://git.test:PORT/repo.git` reads. */
  bareRepo: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

function git(args: string[], cwd: string): void {
  execFileSync('git', args, {
    cwd,
    stdio: 'pipe',
    env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  });
}

/** A bare repository with one commit whose README holds the marker. */
function makeBareRepo(dir: string): string {
  const work = join(dir, 'work');
  const bare = join(dir, 'git', 'repo.git');
  mkdirSync(work, { recursive: true });
  git(['init', '-q', '-b', 'main', work], dir);
  writeFileSync(join(work, 'README'), `${MARKER}\n`);
  git(['add', 'README'], work);
  git(['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'first'], work);
  git(['clone', '-q', '--bare', work, bare], dir);
  return bare;
}

async function npmTarball(): Promise<Buffer> {
  const pack = tar.pack();
  const manifest = JSON.stringify({ name: PACKAGE, version: VERSION, main: 'index.js' });
  pack.entry({ name: 'package/package.json' }, manifest);
  pack.entry({ name: 'package/index.js' }, `module.exports = '${MARKER}';\n`);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

/** A pure-Python wheel, zipped by the host's `zip` (a wheel is a zip with a dist-info folder). */
function makeWheel(dir: string): { name: string; bytes: Buffer } {
  const root = join(dir, 'wheel');
  const module = PACKAGE.replace('-', '_');
  const info = `${module}-${VERSION}.dist-info`;
  mkdirSync(join(root, module), { recursive: true });
  mkdirSync(join(root, info), { recursive: true });
  writeFileSync(join(root, module, '__init__.py'), `MARKER = '${MARKER}'\n`);
  writeFileSync(join(root, info, 'METADATA'), `Metadata-Version: 2.1\nName: ${PACKAGE}\nVersion: ${VERSION}\n`);
  writeFileSync(
    join(root, info, 'WHEEL'),
    'Wheel-Version: 1.0\nGenerator: package-standins\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
  );
  writeFileSync(
    join(root, info, 'RECORD'),
    `${module}/__init__.py,,\n${info}/METADATA,,\n${info}/WHEEL,,\n${info}/RECORD,,\n`,
  );
  const name = `${module}-${VERSION}-py3-none-any.whl`;
  execFileSync('zip', ['-q', '-r', join(dir, name), module, info], { cwd: root });
  return { name, bytes: readFileSync(join(dir, name)) };
}

/** `git http-backend` for one request: CGI environment in, CGI headers and body out. */
function serveGit(projectRoot: string, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const header = (name: string): string => String(req.headers[name] ?? '');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      // With a user, http-backend would accept a push: any refusal of one is the gateway's.
      REMOTE_USER: 'stand-in',
      REMOTE_ADDR: '127.0.0.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: header('content-type'),
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: header('content-length') } : {}),
      HTTP_CONTENT_ENCODING: header('content-encoding'),
      GIT_PROTOCOL: header('git-protocol'),
    },
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.statusCode = status;
    res.write(head.subarray(end + 4));
  });
  child.on('close', () => {
    if (!headersDone) res.statusCode = 502;
    res.end();
  });
  child.stdin.on('error', () => undefined);
}

export async function startPackageStandIns(dir: string): Promise<PackageStandIns> {
  const port = await freePort();
  const { key, cert, caFile } = standInTls([GIT_HOST, NPM_HOST, PYPI_HOST], dir, 'package stand-ins');
  const bareRepo = makeBareRepo(dir);
  const tgz = await npmTarball();
  const wheel = makeWheel(dir);
  const tarballPath = `/${PACKAGE}/-/${PACKAGE}-${VERSION}.tgz`;
  const packument = JSON.stringify({
    name: PACKAGE,
    'dist-tags': { latest: VERSION },
    versions: {
      [VERSION]: {
        name: PACKAGE,
        version: VERSION,
        main: 'index.js',
        dist: {
          tarball: `https://${NPM_HOST}:${port}${tarballPath}`,
          shasum: createHash('sha1').update(tgz).digest('hex'),
          integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
        },
      },
    },
  });
  const wheelSha = createHash('sha256').update(wheel.bytes).digest('hex');
  const simplePage =
    `<!DOCTYPE html><html><body>\n` +
    `<a href="/files/${wheel.name}#sha256=${wheelSha}">${wheel.name}</a>\n</body></html>\n`;

  const seen: SeenRequest[] = [];
  const server: Server = createServer({ key, cert }, (req, res) => {
    const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
    const url = new URL(req.url ?? '/', `https://${host}`);
    res.on('finish', () => seen.push({ host, method: req.method ?? '', path: url.pathname, status: res.statusCode }));
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (host === GIT_HOST) return serveGit(join(dir, 'git'), req, res, url);
    if (host === NPM_HOST && url.pathname === `/${PACKAGE}`) return send(200, 'application/json', packument);
    if (host === NPM_HOST && url.pathname === tarballPath) return send(200, 'application/octet-stream', tgz);
    if (host === PYPI_HOST && url.pathname === `/simple/${PACKAGE}/`) return send(200, 'text/html', simplePage);
    if (host === PYPI_HOST && url.pathname === `/files/${wheel.name}`) {
      return send(200, 'application/octet-stream', wheel.bytes);
    }
    send(404, 'text/plain', 'not here\n');
  });
  await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
  return {
    port,
    caFile,
    bareRepo,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
