import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GatewayConfigError,
  GatewayConfigSchema,
  readGatewayFiles,
  validateGatewayFiles,
} from '../../../src/gateway/config.js';

const minimal = { identity: 'implementer-ab12c' };

describe('GatewayConfigSchema', () => {
  it('fills ports and limits with their defaults', () => {
    const config = GatewayConfigSchema.parse(minimal);
    expect(config).toMatchObject({
      proxy_port: 3128,
      credential_port: 3129,
      allow: [],
      extra_hosts: {},
      routes: [],
      limits: { max_header_bytes: 32768, requests_per_minute: 600 },
    });
  });

  it('rejects unknown keys', () => {
    expect(GatewayConfigSchema.safeParse({ ...minimal, runtime: 'runsc' }).success).toBe(false);
  });

  it('rejects an allow entry that is not a host pattern, naming the entry', () => {
    const result = GatewayConfigSchema.safeParse({ ...minimal, allow: ['github.com', 'https://evil.test/'] });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0].path).toEqual(['allow', 1]);
  });

  it('rejects an extra_hosts value that is neither an IP address nor host-gateway', () => {
    expect(GatewayConfigSchema.safeParse({ ...minimal, extra_hosts: { 'mirror.test': 'my-host' } }).success).toBe(
      false,
    );
    expect(GatewayConfigSchema.safeParse({ ...minimal, extra_hosts: { 'mirror.test': 'host-gateway' } }).success).toBe(
      true,
    );
  });

  it('refuses an http upstream unless its name is pinned in extra_hosts', () => {
    const route = {
      id: 'anthropic',
      role: 'anthropic-base-url',
      upstream: 'http://fake-anthropic.test:8080',
      auth: 'oauth',
    };
    expect(GatewayConfigSchema.safeParse({ ...minimal, routes: [route] }).success).toBe(false);
    expect(
      GatewayConfigSchema.safeParse({
        ...minimal,
        routes: [route],
        extra_hosts: { 'fake-anthropic.test': '127.0.0.1' },
      }).success,
    ).toBe(true);
  });

  it('requires the header name for auth "header" and a host or role on every route', () => {
    expect(
      GatewayConfigSchema.safeParse({ ...minimal, routes: [{ id: 'x', host: 'api.example.test', auth: 'header' }] })
        .success,
    ).toBe(false);
    expect(GatewayConfigSchema.safeParse({ ...minimal, routes: [{ id: 'x', auth: 'bearer' }] }).success).toBe(false);
  });

  it('rejects duplicate route ids', () => {
    const route = { id: 'gh', host: 'api.github.com', auth: 'bearer' };
    expect(GatewayConfigSchema.safeParse({ ...minimal, routes: [route, route] }).success).toBe(false);
  });
});

describe('validateGatewayFiles', () => {
  const config = { ...minimal, routes: [{ id: 'gh', host: 'api.github.com', auth: 'bearer' }] };

  it('requires a secret for every route', () => {
    expect(() => validateGatewayFiles(config, {})).toThrow(/no secret for route\(s\): gh/);
  });

  it('never quotes a secret value in its error', () => {
    const secret = 'ghp_SECRETVALUE123';
    let message = '';
    try {
      validateGatewayFiles(config, { gh: secret, other: 42 });
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/secrets/);
    expect(message).not.toContain(secret);
  });

  it('returns the parsed config and secrets when both are valid', () => {
    const result = validateGatewayFiles(config, { gh: 'token' });
    expect(result.secrets).toEqual({ gh: 'token' });
    expect(result.config.routes[0].id).toBe('gh');
  });
});

describe('readGatewayFiles', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('runs without a secrets file when there are no routes', () => {
    dir = mkdtempSync(join(tmpdir(), 'cb-gateway-config-'));
    writeFileSync(join(dir, 'gateway.json'), JSON.stringify(minimal));
    expect(readGatewayFiles(join(dir, 'gateway.json'), join(dir, 'missing.json')).secrets).toEqual({});
  });

  it("resolves host-gateway names from the hosts file Docker wrote, and names one it can't resolve", () => {
    dir = mkdtempSync(join(tmpdir(), 'cb-gateway-config-'));
    const config = { ...minimal, extra_hosts: { 'mirror.test': 'host-gateway', 'pinned.test': '10.9.8.7' } };
    writeFileSync(join(dir, 'gateway.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n172.17.0.1\tmirror.test\n');
    const read = readGatewayFiles(join(dir, 'gateway.json'), join(dir, 'missing.json'), join(dir, 'hosts'));
    expect(read.config.extra_hosts).toEqual({ 'mirror.test': '172.17.0.1', 'pinned.test': '10.9.8.7' });
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');
    expect(() => readGatewayFiles(join(dir!, 'gateway.json'), join(dir!, 'missing.json'), join(dir!, 'hosts'))).toThrow(
      /mirror\.test maps to host-gateway/,
    );
  });

  it('names the file that is not JSON', () => {
    dir = mkdtempSync(join(tmpdir(), 'cb-gateway-config-'));
    writeFileSync(join(dir, 'gateway.json'), '{not json');
    expect(() => readGatewayFiles(join(dir!, 'gateway.json'), join(dir!, 'missing.json'))).toThrow(
      /gateway config file .*gateway\.json is not valid JSON/,
    );
  });

  it('names a config file that cannot be read', () => {
    expect(() => readGatewayFiles('/nonexistent/cb-gateway.json', '/nonexistent/secrets.json')).toThrow(
      /cannot read gateway config file \/nonexistent\/cb-gateway\.json: ENOENT/,
    );
  });
});
