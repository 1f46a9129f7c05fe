import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkInspector, type PatternFinder } from '../../../../src/gateway/scan/body-inspector.js';
import { NeedleIndex } from '../../../../src/gateway/scan/needle-index.js';
import { NeedleSet, type HeldSecret } from '../../../../src/gateway/scan/needles.js';
import { DECODED_ONLY_PATTERNS, mayHoldPattern, SECRET_PATTERNS } from '../../../../src/gateway/scan/patterns.js';
import { mayHoldShape } from '../../../../src/gateway/scan/shape-gate.js';
import { hasRun, hasTokenRunInText, TOKEN } from '../../../../src/gateway/scan/token-runs.js';
import {
  simpleAll,
  SimpleChunkInspector,
  simpleFindPattern,
  simpleFindPatternDecoded,
  simpleFirst,
  simplePendingTail,
} from '../../../support/simple-scan.js';

/**
 * The fast paths (one pass for all needles, chunks skipped when no shape can be in them, the chunk not
 * copied) must find exactly what the simple searches find (test/support/simple-scan.ts), on random
 * bodies with held secrets, credential shapes and their encodings planted at random chunk boundaries.
 */

function held(value: string, rule: string): HeldSecret {
  return { class: 'known_secret', rule, fingerprint: `fp-${rule}`, value: Buffer.from(value) };
}

/** Shapes built at run time, so no credential-shaped literal sits in the repository. */
const SHAPES = [
  `AKIA${'Q'.repeat(4)}${'2'.repeat(4)}ABCDEFGH`,
  `aws_secret_access_key = ${'wJalrXUtnFEMIK7MDENGbPxRfiCY'}${'EXAMPLEKEY12'}`,
  `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`,
  `xoxb-${'1234567890'}-${'abcdefABCDEF'}`,
  `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${'dozjgNryP4J3jVmNHl0w5N'}`,
  `-----BEGIN ${'OPENSSH'} PRIVATE KEY-----`,
  `postgres://app:${'s3cr3tPass'}@db.internal:5432/app`,
  `redis://u:${'pw\x01\x02'}@h`,
  `4111 1111 1111 ${'1111'}`,
  `${'wJalrXUtnFEMIK7MDENG'}/${'bPxRfiCYEXAMPLEKEY1'}`,
];

/** Pieces that sit on the edges of the gate: escapes, zero-width characters, scheme separators. */
const EDGES = [
  '%%33a',
  '%3%61',
  '%%65%32',
  '%%',
  '%3A',
  '%3a',
  '%2F',
  '%2f',
  '%25',
  '%e2',
  '%80%8b',
  '%41',
  '%',
  '://',
  ':',
  '/',
  '@',
  'redis',
  'mysql',
];
const ZERO_WIDTH = ['\xe2\x80\x8b', '\xe2\x80\x8d', '\xe2\x81\xa0', '\xef\xbb\xbf', '\xe2', '\xe2\x80'];

const ENCODINGS: Array<(text: string) => string> = [
  (t) => t,
  (t) => Buffer.from(t, 'latin1').toString('base64'),
  (t) => Buffer.from(t, 'latin1').toString('hex'),
  (t) => [...Buffer.from(t, 'latin1')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
  (t) => encodeURIComponent(t),
  (t) => [...t].join('\u200b'),
  // Escaped once, then the escapes' own hex digits escaped after a bare `%`: `:` is `%%33a`.
  (t) => encodeURIComponent(t).replace(/%([0-9A-F])/g, (_, d: string) => `%%${d.charCodeAt(0).toString(16)}`),
];

const TOKENISH = fc.string({ unit: fc.constantFrom(...'aZ09+/_-.: %'), maxLength: 40 });

function fragment(forms: Buffer[]): fc.Arbitrary<Buffer> {
  const latin1 = (s: string) => Buffer.from(s, 'latin1');
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    TOKENISH.map(latin1),
    fc.constantFrom(...forms),
    fc.tuple(fc.constantFrom(...forms), fc.nat()).map(([f, n]) => f.subarray(0, n % f.length)),
    fc.tuple(fc.constantFrom(...SHAPES), fc.constantFrom(...ENCODINGS)).map(([s, enc]) => latin1(enc(s))),
    fc.constantFrom(...EDGES, ...ZERO_WIDTH).map(latin1),
  );
}

function chunked(body: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of cuts) {
    if (at >= body.length) break;
    chunks.push(body.subarray(at, at + cut));
    at += cut;
  }
  if (at < body.length) chunks.push(body.subarray(at));
  return chunks;
}

const SECRETS = [
  held('ghp_RealRouteSecret0123456789abcdefXYZ', 'route-0'),
  held('AKIAZ7QCANARY4TESTKEY', 'canary'),
  held('pässwörd+/=1', 'odd'),
];

describe('fast paths find what the simple searches find', () => {
  it('the needle index: the leftmost string at or after its own start, first given first at one position', () => {
    const alphabet = fc.constantFrom(...'abc');
    const word = (min: number) => fc.string({ unit: alphabet, minLength: min, maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(word(1), { minLength: 1, maxLength: 6 }),
        fc.string({ unit: alphabet, maxLength: 200 }),
        fc.array(fc.nat(40), { minLength: 6, maxLength: 6 }),
        (strings, hay, froms) => {
          const bytes = strings.map((s) => Buffer.from(s));
          const haystack = Buffer.from(hay);
          const lowest = Math.min(...froms.slice(0, bytes.length));
          const hit = new NeedleIndex(bytes).first(haystack, lowest, (which) => froms[which]);
          let expected: { which: number; index: number } | undefined;
          bytes.forEach((b, which) => {
            const index = haystack.indexOf(b, froms[which]);
            if (index >= 0 && (expected === undefined || index < expected.index)) expected = { which, index };
          });
          expect(hit).toEqual(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('NeedleSet.first, all and pendingTail against one search per needle', () => {
    const needles = new NeedleSet(SECRETS);
    const forms = needles.needles.map((n) => n.bytes);
    fc.assert(
      fc.property(fc.array(fragment(forms), { maxLength: 12 }), fc.nat(2000), (parts, endsFrom) => {
        const haystack = Buffer.concat(parts);
        expect(needles.first(haystack, endsFrom)).toEqual(simpleFirst(needles.needles, haystack, endsFrom));
        expect(needles.all(haystack)).toEqual(simpleAll(needles.needles, haystack));
        expect(needles.pendingTail(haystack)).toBe(simplePendingTail(needles.needles, needles.maxLength, haystack));
      }),
      { numRuns: 1000 },
    );
    // Every form cut one byte short, the longest kept back whole.
    for (const { bytes } of needles.needles) {
      const cut = Buffer.concat([Buffer.from('x'.repeat(300)), bytes.subarray(0, bytes.length - 1)]);
      expect(needles.pendingTail(cut)).toBe(bytes.length - 1);
    }
  });

  it('the chunk inspector: the same findings, chunk by chunk, in either dlp mode and without patterns', () => {
    const needles = new NeedleSet(SECRETS);
    const forms = needles.needles.map((n) => n.bytes);
    const finder =
      (mode: 'block' | 'audit'): PatternFinder =>
      (rule, match, where) => ({
        action: mode,
        reason: 'secret_pattern',
        detail: { class: 'pattern', rule, where, fingerprint: Buffer.from(match, 'latin1').toString('hex') },
      });
    fc.assert(
      fc.property(
        fc.array(fragment(forms), { maxLength: 16 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 12 }),
        fc.constantFrom<'block' | 'audit' | undefined>('block', 'audit', undefined),
        (parts, cuts, mode) => {
          const patterns = mode && finder(mode);
          const fast = new ChunkInspector(needles, patterns, 'body');
          const simple = new SimpleChunkInspector(needles, patterns, 'body');
          for (const chunk of chunked(Buffer.concat(parts), cuts)) {
            expect(fast.inspect(chunk)).toEqual(simple.inspect(chunk));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});

/**
 * The shape without what fast-check cannot generate (word boundaries, lookarounds, ignored case): its
 * matches are a superset of the shape's, and every character class already holds both cases.
 */
function relaxed(regex: RegExp): RegExp {
  return new RegExp(regex.source.replace(/\\b/g, '').replace(/\(\?<?[!=][^)]*\)/g, ''));
}

describe('the shape gate', () => {
  it.each([...SECRET_PATTERNS, ...DECODED_ONLY_PATTERNS].map((p) => [p.name, p.regex] as const))(
    'lets every %s through, alone or inside random bytes',
    (_name, regex) => {
      fc.assert(
        fc.property(
          fc.stringMatching(relaxed(regex)),
          fc.uint8Array({ maxLength: 64 }),
          fc.uint8Array({ maxLength: 64 }),
          (match, before, after) => {
            expect(mayHoldPattern(match)).toBe(true);
            if ([...match].some((ch) => ch.charCodeAt(0) > 0xff)) return;
            const bytes = Buffer.concat([before, Buffer.from(match, 'latin1'), after]);
            expect(mayHoldShape(bytes)).toBe(true);
          },
        ),
        { numRuns: 300 },
      );
    },
  );

  it('says no only where neither the text nor any view of it holds a shape', () => {
    const pieces = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1')),
      TOKENISH,
      fc.tuple(fc.constantFrom(...SHAPES), fc.constantFrom(...ENCODINGS)).map(([s, enc]) => enc(s)),
      fc
        .tuple(fc.constantFrom(...SHAPES), fc.nat(), fc.constantFrom(...EDGES, ...ZERO_WIDTH))
        .map(([s, at, edge]) => s.slice(0, at % s.length) + edge + s.slice(at % s.length)),
      fc.tuple(fc.constantFrom(...SHAPES), fc.nat(), fc.nat(), fc.constantFrom(...ENCODINGS)).map(([s, i, j, enc]) => {
        const [from, to] = [i % s.length, j % s.length].sort((a, b) => a - b);
        return s.slice(0, from) + enc(s.slice(from, to)) + s.slice(to);
      }),
      fc.constantFrom(...EDGES, ...ZERO_WIDTH),
    );
    let gated = 0;
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 8 }), (list) => {
        const text = list.join('');
        if (mayHoldShape(Buffer.from(text, 'latin1'))) return;
        gated++;
        expect(simpleFindPattern(text)).toBeUndefined();
        expect(simpleFindPatternDecoded(text)).toBeUndefined();
      }),
      { numRuns: 3000 },
    );
    expect(gated).toBeGreaterThan(0);
  });

  it('finds a connection string spelled with escapes or a zero-width character in its separator', () => {
    // Each is shorter than a token run, and the rest of a connection string may be any bytes.
    const rest = '\x01:\x02\x03\x04@h';
    for (const separator of ['%3A%2F%2F', '%3A//', ':%2F/', ':%e2%80%8b//', ':\xe2%80\x8b//', '%%33a//', '%3%61//']) {
      const text = `amqp${separator}${rest}`;
      expect(simpleFindPatternDecoded(text)?.pattern.name, text).toBe('connection_string_password');
      expect(mayHoldShape(Buffer.from(text, 'latin1')), text).toBe(true);
    }
  });

  it('hasRun and hasTokenRunInText against a regular expression', () => {
    const token = new RegExp(
      `[${[...Array(256).keys()]
        .filter((b) => TOKEN[b])
        .map((b) => `\\x${b.toString(16).padStart(2, '0')}`)
        .join('')}]`,
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', '%', '\xe2', ' ', '\x00'), maxLength: 80 }),
        fc.integer({ min: 1, max: 20 }),
        (text, length) => {
          const expected = new RegExp(`${token.source}{${length}}`).test(text);
          expect(hasRun(Buffer.from(text, 'latin1'), TOKEN, length)).toBe(expected);
          expect(hasTokenRunInText(text, length)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
