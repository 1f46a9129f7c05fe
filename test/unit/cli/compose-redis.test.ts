import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  composePasswordCheck,
  composeRedisUrlHint,
  isAuthRefusal,
  urlHasPassword,
} from '../../../src/cli/compose-redis.js';

let home: string;
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'cb-compose-redis-'));
  env = { CLAUDE_BOTTLE_HOME: home };
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe("the compose Redis's password, as doctor shows it", () => {
  it('says nothing when the state folder holds no compose password', () => {
    expect(composePasswordCheck({ kind: 'url', url: 'redis://127.0.0.1:6380' }, env)).toBeUndefined();
  });

  it('shows how to set REDIS_URL from the file, at the address REDIS_URL names, never the password', () => {
    writeFileSync(join(home, 'redis-password'), 'p4ssw0rd\n', { mode: 0o600 });
    const check = composePasswordCheck({ kind: 'url', url: 'redis://10.0.0.5:7000' }, env)!;
    expect(check.status).toBe('warn');
    expect(check.fix).toBe(`export REDIS_URL="redis://:$(cat ${home}/redis-password)@10.0.0.5:7000"`);
    expect(JSON.stringify(check)).not.toContain('p4ssw0rd');
  });

  it("defaults to the compose file's address without REDIS_URL, and keeps rediss:// for TLS", () => {
    writeFileSync(join(home, 'redis-password'), 'x', { mode: 0o600 });
    const embedded = { kind: 'embedded', socket: join(home, 'redis', 'redis.sock'), dir: home } as const;
    expect(composePasswordCheck(embedded, env)!.fix).toContain('@127.0.0.1:6380"');
    expect(composeRedisUrlHint({ kind: 'url', url: 'rediss://redis.example:6380' }, env)).toMatch(
      /^export REDIS_URL="rediss:\/\/:\$\(cat .*\)@redis\.example:6380"$/,
    );
  });

  it('is satisfied by a REDIS_URL that carries a password', () => {
    writeFileSync(join(home, 'redis-password'), 'x', { mode: 0o600 });
    expect(urlHasPassword('redis://:secret@127.0.0.1:6380')).toBe(true);
    expect(urlHasPassword('redis://127.0.0.1:6380')).toBe(false);
    expect(composePasswordCheck({ kind: 'url', url: 'redis://:secret@127.0.0.1:6380' }, env)?.status).toBe('ok');
  });

  it("recognizes Redis's refusals of a missing or wrong password", () => {
    expect(isAuthRefusal('NOAUTH Authentication required.')).toBe(true);
    expect(isAuthRefusal('WRONGPASS invalid username-password pair or user is disabled.')).toBe(true);
    expect(isAuthRefusal('connect ECONNREFUSED 127.0.0.1:6380')).toBe(false);
  });
});
