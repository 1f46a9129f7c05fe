import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScanBlockedError, type ScanFinding, type ScannedRequest } from '../../../../src/gateway/request-scanner.js';
import { SecretScanner, type SecretScannerOptions } from '../../../../src/gateway/scan/secret-scanner.js';
import { MAX_DECODED_BODY_BYTES } from '../../../../src/gateway/scan/body-decoding.js';

const ROUTE_SECRET = 'ghp_RealRouteSecret0123456789abcdefXYZ';
const CANARY_KEY = 'AKIAZ7QCANARY4TESTKEY';

function scanner(options: Partial<SecretScannerOptions> = {}): SecretScanner {
  return new SecretScanner({
    secrets: { 'route-0': ROUTE_SECRET },
    canaries: { aws_access_key_id: CANARY_KEY },
    mode: 'block',
    wildcardDomains: ['example.test'],
    injected: [{ routeHost: 'api.github.test', header: 'authorization', value: `Bearer ${ROUTE_SECRET}` }],
    fingerprintKey: Buffer.alloc(32, 7),
    ...options,
  });
}

function request(overrides: Partial<ScannedRequest> = {}): ScannedRequest {
  return { host: 'pypi.test', port: 80, method: 'POST', url: '/upload', headers: {}, ...overrides };
}

/** Streams `chunks` through the scanner's request-body pass-through; what came out, or the finding that stopped it. */
async function sendBody(
  s: SecretScanner,
  chunks: Buffer[],
  req: ScannedRequest = request(),
): Promise<{ out: Buffer; blocked?: ScanFinding; audits: ScanFinding[] }> {
  const audits: ScanFinding[] = [];
  const parts: Buffer[] = [];
  try {
    await pipeline(
      Readable.from(chunks),
      s.requestBody(req, (f) => audits.push(f)),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          parts.push(chunk);
          cb();
        },
      }),
    );
  } catch (err) {
    if (err instanceof ScanBlockedError) return { out: Buffer.concat(parts), blocked: err.finding, audits };
    throw err;
  }
  return { out: Buffer.concat(parts), audits };
}

const ENCODERS: Record<string, (b: Buffer) => string> = {
  raw: (b) => b.toString('latin1'),
  base64: (b) => b.toString('base64'),
  base64url: (b) => b.toString('base64url'),
  hex: (b) => b.toString('hex'),
  HEX: (b) => b.toString('hex').toUpperCase(),
  percent: (b) => [...b].map((x) => `%${x.toString(16).padStart(2, '0')}`).join(''),
};

describe('SecretScanner: held secrets and canaries', () => {
  it('finds a held secret and a canary in every encoding, at any chunk boundary, with any text around it', async () => {
    const s = scanner();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(ROUTE_SECRET, CANARY_KEY),
        fc.constantFrom(...Object.keys(ENCODERS)),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 6 }),
        async (secret, encoding, before, after, cuts) => {
          const prefix = Buffer.from(before, 'latin1');
          // Encoded inside a longer encoded text too: the secret sits at any alignment.
          const body =
            encoding === 'raw' || encoding.startsWith('hex') || encoding === 'percent'
              ? Buffer.concat([
                  prefix,
                  Buffer.from(ENCODERS[encoding](Buffer.from(secret)), 'latin1'),
                  Buffer.from(after),
                ])
              : Buffer.from(
                  ENCODERS[encoding](Buffer.concat([prefix, Buffer.from(secret), Buffer.from(after)])),
                  'latin1',
                );
          const chunks: Buffer[] = [];
          let at = 0;
          for (const cut of cuts) {
            if (at >= body.length) break;
            chunks.push(body.subarray(at, at + cut));
            at += cut;
          }
          if (at < body.length) chunks.push(body.subarray(at));
          const result = await sendBody(s, chunks);
          expect(result.blocked?.reason).toBe(secret === CANARY_KEY ? 'canary' : 'known_secret');
          // What left before the refusal never holds the whole secret.
          expect(result.out.includes(Buffer.from(secret))).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  }, 60_000);

  it('names the secret by class, rule and fingerprint, never by value', () => {
    const finding = scanner().checkHead(request({ url: `/x?k=${CANARY_KEY}` }));
    expect(finding).toMatchObject({
      action: 'block',
      reason: 'canary',
      detail: { class: 'canary', rule: 'aws_access_key_id', where: 'url' },
    });
    expect(finding!.detail.fingerprint).toMatch(/^canary:[0-9a-f]{12}$/);
    expect(JSON.stringify(finding)).not.toContain(CANARY_KEY);
  });

  it('finds held secrets in headers and host labels, and blocks them in audit mode too', () => {
    const s = scanner({ mode: 'audit' });
    const header = s.checkHead(request({ headers: { 'x-note': Buffer.from(ROUTE_SECRET).toString('base64') } }));
    expect(header).toMatchObject({ action: 'block', reason: 'known_secret', detail: { where: 'header' } });
    const label = Buffer.from(CANARY_KEY).toString('hex');
    const host = s.checkHead(request({ host: `${label}.example.test` }));
    expect(host).toMatchObject({ action: 'block', reason: 'canary', detail: { where: 'hostname' } });
  });

  it('finds a held secret spelled into a host label in any case, with no wildcard and however random it looks', () => {
    // A host name is lowered before the search: the secret's own case must not decide whether it is seen.
    for (const label of [CANARY_KEY, CANARY_KEY.toLowerCase(), CANARY_KEY.toUpperCase()]) {
      const finding = scanner({ wildcardDomains: [] }).checkHead(request({ host: `${label}.example.test` }));
      expect(finding, label).toMatchObject({ action: 'block', reason: 'canary', detail: { where: 'hostname' } });
    }
  });

  it('lets the header the gateway injects toward the route itself through, and nowhere else', () => {
    const s = scanner();
    const injected = { authorization: `Bearer ${ROUTE_SECRET}` };
    expect(s.checkHead(request({ host: 'api.github.test', routeHost: 'api.github.test', headers: injected }))).toBe(
      undefined,
    );
    expect(s.checkHead(request({ host: 'other.test', headers: injected }))?.reason).toBe('known_secret');
  });

  it('catches a held secret sent a piece per request to one host', () => {
    const s = scanner();
    const half = Math.floor(CANARY_KEY.length / 2);
    expect(s.checkHead(request({ url: `/a?p=${CANARY_KEY.slice(0, half + 2)}` }))).toBe(undefined);
    const second = s.checkHead(request({ url: `/b?p=${CANARY_KEY.slice(half - 2)}` }));
    expect(second).toMatchObject({ reason: 'canary', detail: { where: 'split_requests' } });
  });

  it('decodes a gzip body to scan it, and refuses one that does not decode or an unknown encoding', async () => {
    const s = scanner();
    const gz = gzipSync(Buffer.from(`{"key":"${CANARY_KEY}"}`));
    const headers = { 'content-encoding': 'gzip' };
    expect((await sendBody(s, [gz.subarray(0, 9), gz.subarray(9)], request({ headers }))).blocked?.reason).toBe(
      'canary',
    );
    const clean = gzipSync(Buffer.from('{"hello":"world"}'));
    expect((await sendBody(s, [clean], request({ headers }))).out).toEqual(clean);
    expect((await sendBody(s, [Buffer.from('not gzip at all')], request({ headers }))).blocked?.reason).toBe(
      'body_unscannable',
    );
    const zstd = request({ headers: { 'content-encoding': 'zstd' } });
    expect((await sendBody(s, [Buffer.from('x')], zstd)).blocked?.reason).toBe('body_unscannable');
  });

  it('scans a plain body past the decoding bound to its end instead of refusing it as unscannable', async () => {
    const chunk = Buffer.alloc(4 * 1024 * 1024);
    const chunks = Array.from({ length: MAX_DECODED_BODY_BYTES / chunk.length + 1 }, () => chunk);
    const result = await sendBody(scanner(), [...chunks, Buffer.from(CANARY_KEY)]);
    // Only the canary at the very end stops it: every byte before it was scanned and passed on.
    expect(result.blocked?.reason).toBe('canary');
    expect(result.out.length).toBeGreaterThan(MAX_DECODED_BODY_BYTES);
  }, 60_000);

  it('passes a clean body through byte for byte', async () => {
    const body = Buffer.from('x'.repeat(5000));
    const result = await sendBody(scanner(), [body.subarray(0, 1000), body.subarray(1000)]);
    expect(result.blocked).toBe(undefined);
    expect(result.out).toEqual(body);
  });
});

describe('SecretScanner: patterns and dlp mode', () => {
  const AWS = 'AKIAIOSFODNN7EXAMPLE';

  it('blocks a credential shape in block mode and audits it (passing the body) in audit mode', async () => {
    const body = [Buffer.from(`aws_access_key_id = ${AWS}\n`)];
    expect((await sendBody(scanner(), body)).blocked).toMatchObject({
      reason: 'secret_pattern',
      detail: { class: 'pattern', rule: 'aws_access_key_id', where: 'body' },
    });
    const audited = await sendBody(scanner({ mode: 'audit' }), body);
    expect(audited.blocked).toBe(undefined);
    expect(audited.out).toEqual(body[0]);
    expect(audited.audits).toHaveLength(1);
    expect(audited.audits[0]).toMatchObject({ action: 'audit', reason: 'secret_pattern' });
  });

  it('exempts bodies toward the model from patterns, not from held secrets', async () => {
    const toModel = request({ toModel: true });
    expect((await sendBody(scanner(), [Buffer.from(`const key = "${AWS}";`)], toModel)).blocked).toBe(undefined);
    expect((await sendBody(scanner(), [Buffer.from(`"${CANARY_KEY}"`)], toModel)).blocked?.reason).toBe('canary');
  });

  it('refuses random-looking labels under a wildcard entry, not ordinary ones', () => {
    const s = scanner();
    const exfil = s.checkHead(request({ host: 'mzxw6ytboi2dqnrzgq3tmmbqgm4tqnzv.example.test' }));
    expect(exfil).toMatchObject({ reason: 'hostname_entropy', detail: { rule: '*.example.test' } });
    expect(s.checkHead(request({ host: 'uploads-eu-west-1.example.test' }))).toBe(undefined);
    expect(s.checkHead(request({ host: 'mzxw6ytboi2dqnrzgq3tmmbqgm4tqnzv.other.test' }))).toBe(undefined);
  });
});

describe('SecretScanner: responses and reasons', () => {
  it('overwrites the route secret in a response body and headers, keeping the length', async () => {
    const s = scanner();
    const scrubs: ScanFinding[] = [];
    const echo = Buffer.from(`{"headers":{"authorization":"Bearer ${ROUTE_SECRET}"}}`);
    const parts: Buffer[] = [];
    await pipeline(
      Readable.from([echo.subarray(0, 40), echo.subarray(40)]),
      s.responseBody(request(), (f) => scrubs.push(f)),
      new Writable({
        write(c: Buffer, _e, cb) {
          parts.push(c);
          cb();
        },
      }),
    );
    const out = Buffer.concat(parts);
    expect(out.length).toBe(echo.length);
    expect(out.toString()).not.toContain(ROUTE_SECRET);
    expect(out.toString()).toContain('[REDACTED known_secret:');
    expect(scrubs).toHaveLength(1);
    expect(scrubs[0].detail).toMatchObject({ class: 'known_secret', where: 'response' });
    const headers = { 'x-echo': `Bearer ${ROUTE_SECRET}` };
    expect(s.scrubResponseHeaders(request(), headers)?.detail.where).toBe('response');
    expect(headers['x-echo']).not.toContain(ROUTE_SECRET);
  });

  it('passes clean chunks on in their own memory when no secret could be starting at their end', async () => {
    const s = scanner();
    const chunks = [Buffer.from('first clean chunk, '), Buffer.from('second clean chunk.')];
    for (const stream of [s.requestBody(request(), () => {}), s.responseBody(request(), () => {})]) {
      const parts: Buffer[] = [];
      await pipeline(
        Readable.from(chunks),
        stream,
        new Writable({
          write(c: Buffer, _e, cb) {
            parts.push(c);
            cb();
          },
        }),
      );
      expect(parts.map((p) => p.buffer)).toEqual(chunks.map((c) => c.buffer));
      expect(parts.every((p, i) => p.buffer === chunks[i].buffer && p.byteOffset === chunks[i].byteOffset)).toBe(true);
    }
  });

  it('replaces secrets in a reason by class and fingerprint', () => {
    const text = scanner().redactText(`please allow, my key is ${CANARY_KEY} and ghp_${'a'.repeat(36)}`);
    expect(text).not.toContain(CANARY_KEY);
    expect(text).toMatch(/\[canary:[0-9a-f]{12}\]/);
    expect(text).toMatch(/\[github_token:[0-9a-f]{12}\]/);
    expect(text.startsWith('please allow, my key is ')).toBe(true);
  });
});
