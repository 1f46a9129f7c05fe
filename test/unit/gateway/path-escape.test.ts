import { describe, expect, it } from 'vitest';
import { credentialRequestRefusal, isPathEscape, rawPathAndQuery } from '../../../src/gateway/path-escape.js';

describe('isPathEscape', () => {
  it.each([
    '/v1/../admin',
    '/..',
    '/v1/./messages',
    '/v1/%2e%2e/admin',
    '/v1/%2E%2E/admin',
    '/v1/.%2e/admin',
    '/v1/%252e%252e/admin',
    '//evil.test/v1',
    '/v1//messages',
    '/v1\\..\\admin',
    '/v1/%5c..%5cadmin',
    '/v1/%2f%2fevil',
    '/v1/%00',
    '/v1/%zz',
    '/..;/admin',
    '/v1/..;/admin',
    '/v1/..;jsessionid=x/admin',
    '/v1/.;/messages',
    '/v1/%2e%2e;/admin',
    '/v1/..%3b/admin',
    '/v1/..%3B/admin',
    '/v1/%253b',
  ])('refuses %s', (path) => {
    expect(isPathEscape(path)).toBe(true);
  });

  it.each([
    '/',
    '/v1/messages',
    '/v1/messages?beta=true',
    '/repos/o/r/contents/a..b.txt',
    '/projects/group%2Fproject',
    '/v1/models?after=a%20b',
    '/v1/messages?next=/a//b',
    '/v1/a;b/c',
    '/v1/...;/x',
    '/v1/..a;/x',
  ])('lets %s through', (path) => {
    expect(isPathEscape(path)).toBe(false);
  });
});

describe('rawPathAndQuery (the text the escape check runs on)', () => {
  it.each([
    ['/v1/messages?x=1', '/v1/messages?x=1'],
    ['http://gh.test/..%2f..%2fadmin', '/..%2f..%2fadmin'],
    ['http://gh.test/a/../admin', '/a/../admin'],
    ['HTTP://gh.test:80/..;/admin', '/..;/admin'],
    ['http://gh.test', '/'],
    ['http://gh.test?x=1', '/?x=1'],
    ['http://[::1]:80/./x', '/./x'],
  ])('%s -> %s', (target, expected) => {
    expect(rawPathAndQuery(target)).toBe(expected);
  });

  it('keeps what WHATWG URL parsing would normalise away', () => {
    expect(new URL('http://gh.test/a/../admin').pathname).toBe('/admin');
    expect(isPathEscape(rawPathAndQuery('http://gh.test/a/../admin'))).toBe(true);
  });
});

describe('credentialRequestRefusal (every way in to a secret)', () => {
  it.each(['TRACE', 'TRACK', 'trace'])('refuses the reflecting method %s with 405', (method) => {
    expect(credentialRequestRefusal(method, '/v1/messages')).toMatchObject({
      reason: 'method_not_allowed',
      status: 405,
    });
  });

  it.each(['/..;/admin', 'http://gh.test/..%2f..%2fadmin', 'http://gh.test/a/../b'])(
    'refuses the escape %s with 400',
    (target) => {
      expect(credentialRequestRefusal('GET', target)).toMatchObject({ reason: 'path_escape', status: 400 });
    },
  );

  it.each(['GET', 'POST', 'DELETE', 'OPTIONS'])('lets %s on a clean path through', (method) => {
    expect(credentialRequestRefusal(method, '/v1/messages?beta=true')).toBeNull();
  });
});
