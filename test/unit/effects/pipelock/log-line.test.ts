import { describe, expect, it } from 'vitest';
import { isPipelockStartupLine, parsePipelockLogLine } from '../../../../src/effects/pipelock/log-line.js';

/**
 * Lines shaped as pipelock's zerolog audit logger writes them
 * (internal/audit/logger.go): level, time, component, event, then the
 * per-event fields, and zerolog's `message`.
 */
const line = (fields: Record<string, unknown>) =>
  JSON.stringify({ level: 'info', time: '2026-11-27T02:00:00Z', component: 'pipelock', ...fields });

describe('parsePipelockLogLine', () => {
  it('reads an opened CONNECT tunnel as allowed, with host and port from the target', () => {
    const decision = parsePipelockLogLine(
      line({
        event: 'tunnel_open',
        target: 'github.com:443',
        client_ip: '172.20.0.3',
        request_id: 'r1',
        message: 'tunnel opened',
      }),
    );
    expect(decision).toEqual({
      decision: 'allowed',
      host: 'github.com',
      port: 443,
      method: 'CONNECT',
      reason: 'pipelock tunnel_open',
    });
  });

  it('reads a forward-proxy HTTP request as allowed, with the URL default port', () => {
    const decision = parsePipelockLogLine(
      line({
        event: 'forward_http',
        method: 'GET',
        url: 'http://mirror.internal.test/pkg',
        status_code: 200,
        message: 'forward proxy request',
      }),
    );
    expect(decision).toEqual({
      decision: 'allowed',
      host: 'mirror.internal.test',
      port: 80,
      method: 'GET',
      reason: 'pipelock forward_http',
    });
  });

  it('reads a fetch-endpoint request as allowed, keeping an explicit port', () => {
    const decision = parsePipelockLogLine(
      line({ event: 'allowed', method: 'GET', url: 'https://Docs.Example.com:8443/x', message: 'request allowed' }),
    );
    expect(decision).toMatchObject({ decision: 'allowed', host: 'docs.example.com', port: 8443, method: 'GET' });
  });

  it('reads a blocked CONNECT as denied, with scanner and reason', () => {
    const decision = parsePipelockLogLine(
      line({
        level: 'warn',
        event: 'blocked',
        method: 'CONNECT',
        target: 'evil.test:443',
        scanner: 'allowlist',
        reason: 'domain not in api_allowlist',
        message: 'request blocked',
      }),
    );
    expect(decision).toEqual({
      decision: 'denied',
      host: 'evil.test',
      port: 443,
      method: 'CONNECT',
      reason: 'allowlist: domain not in api_allowlist',
    });
  });

  it('reads a blocked plain-HTTP request whose URL pipelock redacted (content scanner) as denied for that host', () => {
    const decision = parsePipelockLogLine(
      line({
        level: 'warn',
        event: 'blocked',
        method: 'POST',
        url: 'http://api.example.com/[redacted]',
        scanner: 'header_dlp',
        reason: 'GitHub Token',
      }),
    );
    expect(decision).toEqual({
      decision: 'denied',
      host: 'api.example.com',
      port: 80,
      method: 'POST',
      reason: 'header_dlp: GitHub Token',
    });
  });

  it('reads bracketed IPv6 targets', () => {
    expect(
      parsePipelockLogLine(
        line({
          event: 'blocked',
          method: 'CONNECT',
          target: '[2001:db8::1]:8443',
          scanner: 'ssrf',
          reason: 'internal',
        }),
      ),
    ).toMatchObject({
      host: '2001:db8::1',
      port: 8443,
      decision: 'denied',
    });
  });

  it('falls back to a generic reason when a blocked line names none', () => {
    expect(parsePipelockLogLine(line({ event: 'blocked', method: 'CONNECT', target: 'x.test:443' }))?.reason).toBe(
      'blocked by pipelock',
    );
  });

  it.each([
    ['a startup line', line({ event: 'startup', listen: '0.0.0.0:8888', mode: 'strict', version: '3.5.0' })],
    [
      'a tunnel close (its open was already counted)',
      line({ event: 'tunnel_close', target: 'github.com:443', total_bytes: 10 }),
    ],
    [
      'an anomaly that did not block',
      line({ event: 'anomaly', method: 'GET', url: 'https://a.example/', reason: 'entropy' }),
    ],
    ['a decision with no destination', line({ event: 'blocked', scanner: 'kill_switch', reason: 'deny all' })],
    ['a decision with an unreadable URL', line({ event: 'allowed', method: 'GET', url: 'not a url' })],
    ['a target with a bad port', line({ event: 'tunnel_open', target: 'github.com:99999' })],
    ['a text-format log line', '2026-11-27T02:00:00Z INF request blocked event=blocked target=evil.test:443'],
    ['an empty line', ''],
    ['JSON that is not an object', '[1,2,3]'],
    ['an object without an event', JSON.stringify({ level: 'info', message: 'hello' })],
    ['truncated JSON', '{"event":"blocked","target":"evil.te'],
  ])('ignores %s', (_label, text) => {
    expect(parsePipelockLogLine(text)).toBeNull();
  });
});

describe('isPipelockStartupLine', () => {
  it('recognises the startup line pipelock logs once its listener is up', () => {
    expect(
      isPipelockStartupLine(
        line({
          event: 'startup',
          listen: '0.0.0.0:8888',
          mode: 'strict',
          version: '3.5.0',
          message: 'pipelock started',
        }),
      ),
    ).toBe(true);
  });

  it.each([
    ['a decision line', line({ event: 'tunnel_open', target: 'github.com:443' })],
    ['plain text mentioning startup', 'startup'],
    ['an empty line', ''],
  ])('does not mistake %s for it', (_label, text) => {
    expect(isPipelockStartupLine(text)).toBe(false);
  });
});
