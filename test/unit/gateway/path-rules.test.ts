import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalPath } from '../../../src/gateway/canonical-path.js';
import { compileRules, globToRegExp } from '../../../src/gateway/path-rules.js';

const segmentChar = fc.constantFrom(...'abcXYZ019-_~.'.split(''));
const segment = fc
  .array(segmentChar, { minLength: 1, maxLength: 6 })
  .map((cs) => cs.join(''))
  .filter((s) => s !== '.' && s !== '..');
const cleanPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((ss) => `/${ss.join('/')}`);

function percentEncodeSome(path: string, picks: boolean[]): string {
  return [...path]
    .map((ch, i) => (ch !== '/' && picks[i % picks.length] ? `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}` : ch))
    .join('');
}

describe('canonical path (properties)', () => {
  it('is idempotent: a canonical path canonicalises to itself', () => {
    fc.assert(
      fc.property(cleanPath, fc.array(fc.boolean(), { minLength: 1 }), (path, picks) => {
        const once = canonicalPath(percentEncodeSome(path, picks));
        expect(once.ok).toBe(true);
        if (!once.ok) return;
        expect(canonicalPath(once.path)).toEqual(once);
      }),
    );
  });

  it('percent-encoding unreserved characters (either hex case) never changes the canonical path', () => {
    fc.assert(
      fc.property(cleanPath, fc.array(fc.boolean(), { minLength: 1 }), fc.boolean(), (path, picks, upper) => {
        const encoded = percentEncodeSome(path, picks);
        const text = upper ? encoded.replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()) : encoded;
        expect(canonicalPath(text)).toEqual(canonicalPath(path));
      }),
    );
  });

  it('resolves "x/.." and "./" insertions to the same path', () => {
    fc.assert(
      fc.property(cleanPath, segment, fc.nat(), (path, detour, at) => {
        const parts = path.split('/');
        const where = 1 + (at % (parts.length - 1));
        const withDetour = [...parts.slice(0, where), detour, '..', '.', ...parts.slice(where)].join('/');
        expect(canonicalPath(withDetour)).toEqual(canonicalPath(path));
      }),
    );
  });

  it('refuses an encoded separator, double encoding, NUL, backslash or "//" anywhere', () => {
    const poison = fc.constantFrom('%2f', '%2F', '%5c', '%25', '%252e', '%00', '\\', '//', '%3b', '/..;/', '/.;/');
    fc.assert(
      fc.property(cleanPath, poison, fc.nat(), (path, bad, at) => {
        const i = 1 + (at % path.length);
        expect(canonicalPath(`${path.slice(0, i)}${bad}${path.slice(i)}`).ok).toBe(false);
      }),
    );
  });

  it('a canonical path has no dot segment, no empty segment and starts with "/"', () => {
    const anyTarget = fc
      .array(fc.constantFrom('a', 'b', '.', '..', '%2e', '%2E%2e', ';x', 'c;d', '%41', '%20'), { maxLength: 8 })
      .map((parts) => `/${parts.join('/')}`);
    fc.assert(
      fc.property(anyTarget, (target) => {
        const result = canonicalPath(target);
        if (!result.ok) return;
        expect(result.path.startsWith('/')).toBe(true);
        const inner = result.path.split('/').slice(1, -1);
        expect(inner.every((s) => s !== '' && s !== '.' && s !== '..')).toBe(true);
      }),
    );
  });
});

describe('canonical path (the tricks)', () => {
  it.each([
    ['/a/%2e%2e/b', '/b'],
    ['/a/./b/', '/a/b/'],
    ['/%61%62c', '/abc'],
    ['/a%20b', '/a%20b'],
    ['/a%c3%a9', '/a%C3%A9'],
    ['/Org/Repo', '/Org/Repo'],
    ['/a/b/..', '/a/'],
  ])('%s reads as %s', (target, path) => {
    expect(canonicalPath(target)).toMatchObject({ ok: true, path });
  });

  it.each([
    ['/org/..;/secret', 'a ";" parameter on an empty or dot segment'],
    ['/org/.;/x', 'a ";" parameter on an empty or dot segment'],
    ['/org/;x/repo', 'a ";" parameter on an empty or dot segment'],
    ['/org%2frepo', 'an encoded "/" (%2F)'],
    ['/org%5crepo', 'an encoded "\\" (%5C)'],
    ['/org/%252e%252e/x', 'double percent-encoding (%25)'],
    ['/org//repo', 'an empty path segment ("//")'],
    ['/../x', '".." above the root'],
    ['/a\\b', 'a backslash in the path'],
    ['/a%zz', 'a malformed percent-escape'],
  ])('%s is refused: %s', (target, why) => {
    expect(canonicalPath(target)).toEqual({ ok: false, why });
  });
});

describe('path and method rules', () => {
  const org = compileRules({ host: 'github.com', paths: ['/acme/**'] });
  const noPush = compileRules({ host: 'github.com', paths: ['/**', '!/**/git-receive-pack'] });
  const readOnly = compileRules({ host: 'pypi.org', methods: ['GET', 'HEAD'] });

  it('globs: "*" stays in a segment, "**" spans segments and a trailing "/**" takes the folder itself', () => {
    expect(globToRegExp('/acme/*').test('/acme/repo')).toBe(true);
    expect(globToRegExp('/acme/*').test('/acme/repo/x')).toBe(false);
    expect(globToRegExp('/acme/**').test('/acme')).toBe(true);
    expect(globToRegExp('/acme/**').test('/acme/a/b')).toBe(true);
    expect(globToRegExp('/acme/**').test('/acmeevil/a')).toBe(false);
    expect(globToRegExp('/**/info/refs').test('/acme/repo.git/info/refs')).toBe(true);
  });

  it('lets one organisation through and forwards the canonical path', () => {
    expect(org.check('GET', '/acme/repo/info/refs?service=git-upload-pack')).toEqual({
      ok: true,
      target: '/acme/repo/info/refs?service=git-upload-pack',
    });
    expect(org.check('GET', '/acme/%72epo')).toEqual({ ok: true, target: '/acme/repo' });
  });

  it('refuses another organisation with the rule named', () => {
    expect(org.check('GET', '/other/repo')).toMatchObject({
      ok: false,
      reason: 'path_rule',
      detail: { class: 'path_rule', rule: 'github.com paths /acme/**', where: 'url' },
    });
  });

  it.each([
    ['/acme/../other/repo', 'path_rule'],
    ['/acme/%2e%2e/other', 'path_rule'],
    ['/acme/..;/other', 'path_ambiguous'],
    ['/acme//other', 'path_ambiguous'],
    ['/acme%2fother', 'path_ambiguous'],
    ['/ACME/repo', 'path_rule'],
  ])('the trick %s is refused as %s', (target, reason) => {
    expect(org.check('GET', target)).toMatchObject({ ok: false, reason });
  });

  it('git fetch passes, push is refused, and a ";" parameter cannot hide the push', () => {
    expect(noPush.check('POST', '/acme/repo.git/git-upload-pack').ok).toBe(true);
    expect(noPush.check('POST', '/acme/repo.git/git-receive-pack')).toMatchObject({ reason: 'path_rule' });
    expect(noPush.check('POST', '/acme/repo.git/git-receive-pack;x')).toMatchObject({ reason: 'path_ambiguous' });
    expect(noPush.check('POST', '/acme/repo.git/git-receive-pac%6b')).toMatchObject({ reason: 'path_rule' });
  });

  it('methods: any case of an allowed method passes, others are refused as method_rule', () => {
    expect(readOnly.check('get', '/simple/requests/').ok).toBe(true);
    expect(readOnly.check('HEAD', '/x').ok).toBe(true);
    expect(readOnly.check('POST', '/legacy/')).toMatchObject({
      ok: false,
      reason: 'method_rule',
      detail: { class: 'method_rule', rule: 'pypi.org methods GET,HEAD', where: 'url' },
    });
  });

  it('without path globs the target is forwarded as sent (no canonicalisation needed)', () => {
    expect(readOnly.check('GET', '/@types%2fnode')).toEqual({ ok: true, target: '/@types%2fnode' });
  });
});
