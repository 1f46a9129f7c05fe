import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expect, it } from 'vitest';
import { SecretScanner } from '../../../../src/gateway/scan/secret-scanner.js';
import { ScanBlockedError, type ScanFinding, type ScannedRequest } from '../../../../src/gateway/request-scanner.js';
import {
  corpusTarget,
  KNOWN_MISSES,
  loadCorpus,
  refusedByAllowlist,
  type CorpusCase,
} from '../../../../bench/egress-corpus-data.js';
import { encodeClientFrames } from '../../../../bench/websocket-client-frames.js';
import { frameGate } from '../../../../src/gateway/websocket-frames.js';

/**
 * The corpus in-process, through the same scanner the gateway builds (patterns in block mode, the
 * cases' hosts under wildcard entries): a fast check of what the real-bottle run
 * (test/integration/egress-corpus.test.ts) measures end to end. Cases the allowlist refuses
 * (SSRF literals, a blocklisted domain) are not the scanner's and are left to that run.
 */
const corpus = loadCorpus();

async function verdict(c: CorpusCase, scanner: SecretScanner): Promise<ScanFinding | undefined> {
  const target = corpusTarget(c, 8080);
  const req: ScannedRequest = {
    host: target.host,
    port: 8080,
    method: target.method,
    url: target.path,
    headers: Object.fromEntries(Object.entries(target.headers).map(([k, v]) => [k.toLowerCase(), v])),
  };
  const head = scanner.checkHead(req);
  if (head) return head;
  if (target.frames) {
    let found: ScanFinding | undefined;
    const gate = frameGate((payload, startsMessage) => {
      found ??= scanner.checkFrame(req, payload, startsMessage);
      if (found?.action === 'block') throw new ScanBlockedError(found);
    });
    await pipeline(
      Readable.from([encodeClientFrames(target.frames)]),
      gate,
      new Writable({ write: (_c, _e, d) => d() }),
    ).catch((err: unknown) => {
      if (!(err instanceof ScanBlockedError)) throw err;
      found ??= err.finding;
    });
    return found;
  }
  let found: ScanFinding | undefined;
  const body = scanner.requestBody(req, (f) => (found ??= f));
  await pipeline(
    Readable.from([Buffer.from(target.body ?? '')]),
    body,
    new Writable({ write: (_c, _e, d) => d() }),
  ).catch((err: unknown) => {
    if (err instanceof ScanBlockedError) found = err.finding;
    else throw err;
  });
  return found;
}

it('blocks every block case and passes every allow case the scanner decides, but the known misses', async () => {
  const rows: string[] = [];
  for (const c of corpus.cases.filter((x) => !refusedByAllowlist(x))) {
    const scanner = new SecretScanner({
      secrets: {},
      canaries: {},
      mode: 'block',
      wildcardDomains: [corpusTarget(c, 8080).wildcard.slice(2)],
      injected: [],
    });
    const finding = await verdict(c, scanner);
    const got = finding ? 'block' : 'allow';
    if (got !== c.expect) rows.push(c.id);
  }
  expect(rows).toEqual(Object.keys(KNOWN_MISSES));
});
