/**
 * Property tests for the address policy: a private, loopback, link-local,
 * metadata or otherwise internal address is refused however it is written
 * (dotted IPv4, IPv4-mapped or -compatible IPv6 in any spelling, NAT64,
 * 6to4, Teredo), alone or among public answers, and an address the policy
 * lets through is outside every internal range.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress } from '../../../src/gateway/address-policy.js';
import { EgressPolicy } from '../../../src/gateway/egress-policy.js';

/** Internal IPv4 ranges, written out again here (not imported) as the specification. */
const INTERNAL_V4: Array<[number, number]> = [
  [0x00000000, 8],
  [0x0a000000, 8],
  [0x64400000, 10],
  [0x7f000000, 8],
  [0xa9fe0000, 16],
  [0xac100000, 12],
  [0xc0000000, 24],
  [0xc0a80000, 16],
  [0xc6120000, 15],
  [0xe0000000, 4],
  [0xf0000000, 4],
];

const dotted = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
const hex16 = (n: number) => n.toString(16);
const isInternalV4 = (n: number) => INTERNAL_V4.some(([net, bits]) => n >>> (32 - bits) === net >>> (32 - bits));

const internalV4 = fc
  .tuple(fc.constantFrom(...INTERNAL_V4), fc.integer({ min: 0, max: 0xffffffff }))
  .map(([[net, bits], random]) => (net | (random >>> bits)) >>> 0);
const publicV4 = fc.integer({ min: 0, max: 0xffffffff }).filter((n) => !isInternalV4(n));
const group = fc.integer({ min: 0, max: 0xffff });

/** Every IPv6 spelling that delivers to the IPv4 address `n`. */
function encodings(n: number): fc.Arbitrary<string> {
  const high = n >>> 16;
  const low = n & 0xffff;
  const v4 = dotted(n);
  return fc.oneof(
    fc.constant(v4),
    fc.constant(`::ffff:${v4}`),
    fc.constant(`::ffff:${hex16(high)}:${hex16(low)}`),
    fc.constant(`0:0:0:0:0:ffff:${v4}`),
    fc.constant(`0000:0000:0000:0000:0000:FFFF:${hex16(high).toUpperCase()}:${hex16(low).toUpperCase()}`),
    fc.constant(`64:ff9b::${v4}`),
    fc.constant(`64:ff9b::${hex16(high)}:${hex16(low)}`),
    fc.constant(`64:ff9b:0:0:0:0:${hex16(high)}:${hex16(low)}`),
    fc
      .tuple(group, group, group)
      .map(([a, b, c]) => `2002:${hex16(high)}:${hex16(low)}:${hex16(a)}::${hex16(b)}:${hex16(c)}`),
    fc.tuple(group, group).map(([a, b]) => `2001:0:${hex16(high)}:${hex16(low)}:${hex16(a)}:${hex16(b)}:ffff:ffff`),
    fc
      .tuple(group, group)
      .map(([a, b]) => `2001:0:4136:e378:${hex16(a)}:${hex16(b)}:${hex16(high ^ 0xffff)}:${hex16(low ^ 0xffff)}`),
    fc.constant(`::${v4}`),
    fc.constant(`${v4}%eth0`),
  );
}

/** Internal IPv6 ranges that carry no IPv4 address. */
const internalV6 = fc.oneof(
  fc.constant('::1'),
  fc.constant('::'),
  fc
    .tuple(fc.integer({ min: 0xfc00, max: 0xfdff }), group, group)
    .map(([a, b, c]) => `${hex16(a)}:${hex16(b)}::${hex16(c)}`),
  fc
    .tuple(fc.integer({ min: 0xfe80, max: 0xfeff }), group, group)
    .map(([a, b, c]) => `${hex16(a)}:${hex16(b)}::${hex16(c)}`),
  fc.tuple(fc.integer({ min: 0xff00, max: 0xffff }), group).map(([a, b]) => `${hex16(a)}::${hex16(b)}`),
  fc.tuple(group, group).map(([a, b]) => `64:ff9b:1:${hex16(a)}::${hex16(b)}`),
);

describe('property: internal addresses are refused in any encoding', () => {
  it('an internal IPv4 address, however it is spelled, is forbidden', () => {
    fc.assert(
      fc.property(
        internalV4.chain((n) => encodings(n).map((text) => ({ n, text }))),
        ({ text }) => {
          expect(classifyAddress(text).forbidden, text).toBe(true);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('an internal IPv6 address is forbidden', () => {
    fc.assert(
      fc.property(internalV6, (text) => {
        expect(classifyAddress(text).forbidden, text).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('one internal answer among public ones refuses the name (and nothing is returned to connect to)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(publicV4.map(dotted), { maxLength: 3 }),
        internalV4.chain(encodings),
        fc.nat(3),
        async (publicAnswers, internal, at) => {
          const answers = [...publicAnswers];
          answers.splice(at % (answers.length + 1), 0, internal);
          const policy = new EgressPolicy(['allowed.test'], {}, async () => answers);
          const verdict = await policy.resolve('allowed.test');
          expect(verdict.ok, answers.join(' ')).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('an IP literal as the request host is judged by the same policy', async () => {
    await fc.assert(
      fc.asyncProperty(
        internalV4.chain(encodings).filter((t) => !t.includes('%')),
        async (literal) => {
          const policy = new EgressPolicy([], {}, async () => {
            throw new Error('an IP literal is never looked up');
          });
          expect((await policy.resolve(literal)).ok).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('text that is not a canonical IP address is never treated as an allowed address', () => {
    const nonCanonical = fc.oneof(
      internalV4.map((n) => String(n)),
      internalV4.map((n) => `0x${n.toString(16)}`),
      internalV4.map((n) =>
        dotted(n)
          .split('.')
          .map((o) => `0${o}`)
          .join('.'),
      ),
      internalV4.map((n) => `${n >>> 24}.${n & 0xffffff}`),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(nonCanonical, (text) => {
        const verdict = classifyAddress(text);
        if (!verdict.forbidden) expect(/^[0-9a-f:.]+$/i.test(text), text).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('control: public IPv4 addresses pass, so the properties above are not vacuous', () => {
    fc.assert(
      fc.property(publicV4, (n) => {
        expect(classifyAddress(dotted(n))).toEqual({ forbidden: false });
        expect(classifyAddress(`::ffff:${dotted(n)}`)).toEqual({ forbidden: false });
      }),
      { numRuns: 2000 },
    );
  });
});
