import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { decodedViews, percentLevels } from '../../../../src/gateway/scan/decoded-views.js';
import { base58CheckValid, bech32Valid, ibanValid } from '../../../../src/gateway/scan/checksums.js';
import { findPattern, findPatternDecoded } from '../../../../src/gateway/scan/patterns.js';
import { urlSignal } from '../../../../src/gateway/scan/url-signals.js';
import { looksLikeEncodedLabels } from '../../../../src/gateway/scan/hostname-entropy.js';
import { SecretScanner } from '../../../../src/gateway/scan/secret-scanner.js';
import { frameGate } from '../../../../src/gateway/websocket-frames.js';
import { ScanBlockedError, type ScannedRequest } from '../../../../src/gateway/request-scanner.js';
import { encodeClientFrame, encodeClientFrames } from '../../../../bench/websocket-client-frames.js';

/** Built at run time so no credential-shaped literal sits in the repository. */
const KEY = `AKIA${'IOSFODNN7'}${'EXAMPLE'}`;
const hex = (s: string) => Buffer.from(s).toString('hex');
const pct = (s: string) => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

describe('decoded views', () => {
  it.each([
    ['base64', Buffer.from(KEY).toString('base64')],
    ['base64url with a prefix', Buffer.from(`k:${KEY}`).toString('base64url')],
    ['hex', hex(KEY)],
    ['hex with dashes', hex(KEY).replace(/(..)(?!$)/g, '$1-')],
    ['percent twice', pct(KEY).replace(/%/g, '%25')],
    ['base64 inside percent', pct(Buffer.from(KEY).toString('base64'))],
    ['zero-width characters between letters', Buffer.from([...KEY].join('\u200b')).toString('latin1')],
  ])('finds a credential shape hidden as %s', (_how, text) => {
    expect(findPattern(text)).toBeUndefined();
    expect(findPatternDecoded(`q=${text}&x=1`)?.pattern.name).toBe('aws_access_key_id');
  });

  it('finds a bare AWS secret key only once it was decoded', () => {
    const secret = `wJalrXUtnFEMI/K7MDENG/${'bPxRfiCYEXAMPLEKEY'}`;
    expect(findPattern(`line ${secret}\n`)).toBeUndefined();
    expect(findPatternDecoded(`deadbeef${hex(secret)}00`)?.pattern.name).toBe('aws_secret_access_key');
  });

  it('counts percent-encoding levels and leaves ordinary text without views', () => {
    expect(percentLevels('a%252541')).toBe(3);
    expect(percentLevels('a%20b')).toBe(1);
    expect(decodedViews('just some words in a sentence')).toEqual([]);
  });
});

describe('checksummed identifiers', () => {
  it('accepts valid wallet, key and account numbers and refuses a changed character', () => {
    const p2pkh = `1A1zP1eP5QGefi2DMPTfTL5SLmv7${'DivfNa'}`;
    expect(base58CheckValid(p2pkh)).toBe(true);
    expect(base58CheckValid(p2pkh.replace('Na', 'Nb'))).toBe(false);
    const segwit = `bc1qw508d6qejxtdg4y5r3zarvary0c5${'xw7kv8f3t4'}`;
    expect(bech32Valid(segwit)).toBe(true);
    expect(bech32Valid(segwit.replace('t4', 't5'))).toBe(false);
    expect(ibanValid(`GB82WEST1234569876${'5432'}`)).toBe(true);
    expect(ibanValid(`GB82WEST1234569876${'5433'}`)).toBe(false);
  });
});

describe('URL signals', () => {
  it('refuses nested percent-encoding and random-looking tokens, not ids, hashes or words', () => {
    expect(urlSignal('http://h/x?k=%25252541')?.rule).toBe('nested_percent_encoding');
    expect(urlSignal(`http://h/api/x7Kp2mQ9vR4sL8nW1bY6cT3${'fA0jH5dE'}/status`)?.rule).toBe('high_entropy_url_token');
    expect(urlSignal('http://h/resources/550e8400-e29b-41d4-a716-446655440000/details')).toBeUndefined();
    expect(urlSignal(`http://h/repos/o/r/commits/${'a'.repeat(10)}0123456789abcdef0123456789abcd`)).toBeUndefined();
    expect(urlSignal('http://h/search?q=how+to+fix+permission+denied+errors+in+golang')).toBeUndefined();
  });
});

describe('host labels under a wildcard entry', () => {
  it.each([
    'jbswy3dpehpk3pxp.exfil.example.test',
    '4a6f686e446f65.53656372657431.exfil.example.test',
    'ghp-xxxx.yyyyzzzz.exfil.example.test',
    'a1b2c3d4.e5f6a7b8.c9d0e1f2.a3b4c5d6.example.test',
  ])('refuses %s', (host) => {
    expect(looksLikeEncodedLabels(host, 'example.test')).toBe(true);
  });
  it.each(['cdnjs.example.test', 'eu-west-1.s3.example.test', 'd111111abcdef8.example.test'])('allows %s', (host) => {
    expect(looksLikeEncodedLabels(host, 'example.test')).toBe(false);
  });
});

describe('WebSocket frames', () => {
  const request: ScannedRequest = { host: 'ws.test', port: 80, method: 'GET', url: '/ws', headers: {} };
  const scanner = () =>
    new SecretScanner({ secrets: {}, canaries: {}, mode: 'block', wildcardDomains: [], injected: [] });

  async function send(frames: Buffer, s: SecretScanner): Promise<ScanBlockedError | undefined> {
    const gate = frameGate((payload, startsMessage) => {
      const finding = s.checkFrame(request, payload, startsMessage);
      if (finding?.action === 'block') throw new ScanBlockedError(finding);
    });
    const sink = new Writable({ write: (_c, _e, done) => done() });
    return pipeline(Readable.from([frames]), gate, sink).then(
      () => undefined,
      (err: unknown) => err as ScanBlockedError,
    );
  }

  it('finds a key split over fragments of one message, as one stream per connection', async () => {
    const frames = encodeClientFrames([
      { opcode: 'text', payload: Buffer.from(KEY.slice(0, 7)), fin: false },
      { opcode: 'continuation', payload: Buffer.from(KEY.slice(7)) },
    ]);
    expect((await send(frames, scanner()))?.finding.detail.rule).toBe('aws_access_key_id');
  });

  it('refuses a frame with reserved bits (compression never agreed), unread', async () => {
    const frame = encodeClientFrame({ opcode: 'text', payload: Buffer.from('harmless'), rsv1: true });
    expect((await send(frame, scanner()))?.finding.reason).toBe('body_unscannable');
  });

  it('lets ordinary chat frames through', async () => {
    const frame = encodeClientFrame({ opcode: 'text', payload: Buffer.from('{"text":"has anyone reviewed it?"}') });
    expect(await send(frame, scanner())).toBeUndefined();
  });
});
