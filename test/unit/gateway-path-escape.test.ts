import { describe, expect, it } from 'vitest';
import { isPathEscape } from '../../src/gateway/path-escape.js';

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
  ])('refuses %s', (path) => {
    expect(isPathEscape(path)).toBe(true);
  });

  it.each(['/', '/v1/messages', '/v1/messages?beta=true', '/repos/o/r/contents/a..b.txt', '/projects/group%2Fproject', '/v1/models?after=a%20b', '/v1/messages?next=/a//b'])(
    'lets %s through',
    (path) => {
      expect(isPathEscape(path)).toBe(false);
    },
  );
});
