import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkHostKey,
  HostKeyChanged,
  knownHostsPath,
  pinHostKey,
  readKnownHosts,
} from '../../../src/cli/known-hosts.js';
import { UsageError } from '../../../src/shared/errors.js';
import { generateHostKeyPair, hostKeyId } from '../../../src/shared/sealed-secrets.js';

let home: string;
let path: string;
const genuine = generateHostKeyPair().publicKey;
const swapped = generateHostKeyPair().publicKey;

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'cb-known-hosts-'));
  path = knownHostsPath({ CLAUDE_BOTTLE_HOME: home });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

function refusal(fn: () => void): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a refusal');
}

describe('known-hosts', () => {
  it('lives under the CLI home', () => {
    expect(path).toBe(join(home, 'known-hosts'));
  });

  it("pins a host's key on first use, in a 0600 file, with its key id", () => {
    checkHostKey(path, 'host-a', genuine);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readKnownHosts(path).get('host-a')).toEqual({
      host: 'host-a',
      keyId: hostKeyId(genuine),
      publicKey: genuine,
    });
    expect(readFileSync(path, 'utf8')).toContain(`host-a ${hostKeyId(genuine)} ${genuine}\n`);
  });

  it('passes the same key again without rewriting the file', () => {
    checkHostKey(path, 'host-a', genuine);
    const written = statSync(path).mtimeMs;
    expect(() => checkHostKey(path, 'host-a', genuine)).not.toThrow();
    expect(statSync(path).mtimeMs).toBe(written);
  });

  it('refuses a changed key with one line naming the host, both key ids and the command that accepts it', () => {
    checkHostKey(path, 'host-a', genuine);
    const err = refusal(() => checkHostKey(path, 'host-a', swapped));
    expect(err).toBeInstanceOf(HostKeyChanged);
    expect((err as HostKeyChanged).exitCode).toBe(1);
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toContain('host host-a');
    expect(err.message).toContain(hostKeyId(genuine));
    expect(err.message).toContain(hostKeyId(swapped));
    expect(err.message).toContain(`bottle hosts --trust host-a --key ${hostKeyId(swapped)}`);
    // The refusal pins nothing: the genuine key stays.
    expect(readKnownHosts(path).get('host-a')?.publicKey).toBe(genuine);
  });

  it('pins each host on its own', () => {
    checkHostKey(path, 'host-a', genuine);
    checkHostKey(path, 'host-b', swapped);
    expect([...readKnownHosts(path).keys()]).toEqual(['host-a', 'host-b']);
  });

  it('trusting replaces the pinned key, atomically, and the new key then passes', () => {
    checkHostKey(path, 'host-a', genuine);
    checkHostKey(path, 'host-b', genuine);
    pinHostKey(path, 'host-a', swapped);
    expect(() => checkHostKey(path, 'host-a', swapped)).not.toThrow();
    expect(refusal(() => checkHostKey(path, 'host-a', genuine))).toBeInstanceOf(HostKeyChanged);
    expect(readKnownHosts(path).get('host-b')?.publicKey).toBe(genuine);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // Written beside and renamed over: no temporary file is left.
    expect(readdirSync(home)).toEqual(['known-hosts']);
  });

  it.each([
    [
      'a line with a missing field',
      `host-a ${hostKeyId(genuine)}`,
      /line 2: expected "<host id> <key id> <public key>"/,
    ],
    ['a key id that is not the key', `host-a ${hostKeyId(swapped)} ${genuine}`, /line 2: the key id is not the key's/],
    ['a key that is not a key', 'host-a 0123456789abcdef not-a-key', /line 2: the public key is not/],
    ['a host id that is not one', `bad/host ${hostKeyId(genuine)} ${genuine}`, /line 2: the host id is not/],
    [
      'a host pinned twice',
      `host-a ${hostKeyId(genuine)} ${genuine}\nhost-a ${hostKeyId(swapped)} ${swapped}`,
      /line 3: host host-a is pinned twice/,
    ],
  ])('refuses %s with one line naming the file and line (exit 2), sealing to nothing', (_, body, why) => {
    writeFileSync(path, `# pinned by hand\n${body}\n`, { mode: 0o600 });
    const err = refusal(() => checkHostKey(path, 'host-a', genuine));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(why);
  });

  it('reads comments and blank lines as nothing', () => {
    writeFileSync(path, `# a comment\n\n  host-a ${hostKeyId(genuine)} ${genuine}  \n`, { mode: 0o600 });
    expect(readKnownHosts(path).get('host-a')?.publicKey).toBe(genuine);
  });
});
