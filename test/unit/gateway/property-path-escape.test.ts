/**
 * Property tests for the path-escape check: a request path that any common
 * upstream would resolve to somewhere outside the route's prefix is never
 * forwarded. "Any common upstream" is written out below as an independent
 * model: it decodes percent-encoding up to three times, treats backslashes
 * as slashes, drops `;parameters` from segments (servlet containers), and
 * resolves dot segments; the path escapes if it ever climbs above its root.
 * Checked on the function and end to end through the gateway (credential
 * port and absolute-form through the proxy port) against a recording upstream.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/gateway/gateway.js';
import { credentialRequestRefusal, isPathEscape } from '../../../src/gateway/path-escape.js';

const PREFIX = '/api';

/** Every reading of `path` the model considers; a broken percent-encoding ends the decoding there. */
function readings(path: string): string[] {
  const found = [path];
  let current = path;
  for (let i = 0; i < 3; i++) {
    try {
      current = decodeURIComponent(current);
    } catch {
      break;
    }
    found.push(current);
  }
  return found;
}

/** Whether resolving dot segments (after the model's normalisation) climbs above the path's own root. */
function climbsOut(reading: string): boolean {
  let depth = 0;
  for (const raw of reading.replace(/\\/g, '/').split('/')) {
    const segment = raw.split(';')[0];
    if (segment === '..') {
      depth -= 1;
      if (depth < 0) return true;
    } else if (segment !== '.' && segment !== '') {
      depth += 1;
    }
  }
  return false;
}

function modelSaysEscape(pathAndQuery: string): boolean {
  const path = pathAndQuery.split('?')[0].split('#')[0];
  return readings(path).some(climbsOut);
}

const piece = fc.constantFrom(
  '..',
  '.',
  '%2e',
  '%2E',
  '%2e%2e',
  '.%2e',
  '%2e.',
  '%252e%252e',
  '%25252e%25252e',
  '%2f',
  '%2F',
  '%5c',
  '\\',
  ';',
  '..;',
  '.;',
  '..;x=1',
  '%3b',
  '..%3b',
  '%00',
  '%25',
  'a',
  'v1',
  'messages',
  '',
  '...',
  '..a',
);
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.array(piece, { minLength: 1, maxLength: 3 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.webSegment() },
);
const trickyPath = fc
  .tuple(fc.array(segment, { minLength: 1, maxLength: 6 }), fc.option(fc.webQueryParameters(), { nil: undefined }))
  .map(([segments, query]) => `/${segments.join('/')}${query ? `?${query}` : ''}`);
const anyPath = fc.oneof(
  trickyPath,
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
);

describe('property: a path that resolves outside the prefix is never forwarded', () => {
  it('isPathEscape refuses everything the model says escapes', () => {
    fc.assert(
      fc.property(anyPath, (path) => {
        if (modelSaysEscape(path)) expect(isPathEscape(path), path).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it('the credential check refuses it in absolute form too (the proxy-port way in)', () => {
    fc.assert(
      fc.property(anyPath, (path) => {
        if (modelSaysEscape(path))
          expect(credentialRequestRefusal('GET', `http://gh.test${path}`), path).not.toBeNull();
      }),
      { numRuns: 5000 },
    );
  });

  it('control: the generator does produce escapes and clean paths', () => {
    const sample = fc.sample(anyPath, { numRuns: 2000, seed: 42 });
    expect(sample.filter(modelSaysEscape).length).toBeGreaterThan(100);
    expect(sample.filter((p) => !isPathEscape(p)).length).toBeGreaterThan(100);
  });
});

describe('property, end to end: the upstream never sees a path outside the route prefix', () => {
  let upstream: Server;
  let gateway: RunningGateway;
  const seen: string[] = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    gateway = await startGateway(
      {
        identity: 'implementer-pp001',
        proxy_port: 0,
        credential_port: 0,
        extra_hosts: { 'gh.test': '127.0.0.1' },
        routes: [{ id: 'gh', host: 'gh.test', upstream: `http://gh.test:${port}${PREFIX}`, auth: 'bearer' }],
        limits: { requests_per_minute: 1_000_000 },
      },
      { gh: 'ghp_secret' },
      { log: () => {} },
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await new Promise<void>((resolve) => {
      upstream.close(() => resolve());
      upstream.closeAllConnections();
    });
  });

  function send(port: number, path: string): Promise<number> {
    return new Promise((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { host: 'gh.test' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      // Node's client refuses some paths itself (e.g. control characters): nothing was sent.
      req.on('error', () => resolve(0));
      req.end();
    });
  }

  it('through the credential port and the proxy port', async () => {
    await fc.assert(
      fc.asyncProperty(trickyPath, async (path) => {
        seen.length = 0;
        await send(gateway.credentialPort, `/_host/gh.test${path}`);
        await send(gateway.proxyPort, `http://gh.test${path}`);
        for (const url of seen) {
          expect(url.startsWith(`${PREFIX}/`) || url === PREFIX, url).toBe(true);
          expect(modelSaysEscape(url.slice(PREFIX.length) || '/'), url).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });
});
