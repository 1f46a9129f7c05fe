import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSshPrivateKey, resolveSecrets } from '../../../src/cli/secrets.js';
import { loadSshKeys, SshKeyError } from '../../../src/gateway/ssh-agent.js';
import type { BottlePlan } from '../../../src/plan/schema.js';
import { sshKeyId } from '../../../src/plan/ssh-config.js';
import { BottleError } from '../../../src/shared/errors.js';
import { checkSshPrivateKey } from '../../../src/shared/ssh-key.js';

// Keys are made here by ssh-keygen, as a user makes them, and live only in this folder.
const dir = mkdtempSync(join(tmpdir(), 'cb-ssh-key-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PASSPHRASE = 'correct horse';

interface KeyKind {
  name: string;
  args: string[];
  /** What the gateway finds wrong with it; undefined when it can use the key. */
  problem?: 'encrypted' | 'pkcs8' | 'public' | 'unsupported';
}

const KINDS: KeyKind[] = [
  { name: 'ed25519', args: ['-t', 'ed25519'] },
  { name: 'rsa', args: ['-t', 'rsa', '-b', '2048'] },
  { name: 'ecdsa', args: ['-t', 'ecdsa'] },
  { name: 'rsa-pem', args: ['-t', 'rsa', '-b', '2048', '-m', 'PEM'] },
  { name: 'ecdsa-pem', args: ['-t', 'ecdsa', '-m', 'PEM'] },
  { name: 'rsa-pkcs8', args: ['-t', 'rsa', '-b', '2048', '-m', 'PKCS8'], problem: 'pkcs8' },
  { name: 'ecdsa-pkcs8', args: ['-t', 'ecdsa', '-m', 'PKCS8'], problem: 'pkcs8' },
  { name: 'ed25519-passphrase', args: ['-t', 'ed25519', '-N', PASSPHRASE], problem: 'encrypted' },
  {
    name: 'rsa-pem-passphrase',
    args: ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', PASSPHRASE],
    problem: 'encrypted',
  },
  {
    name: 'rsa-pkcs8-passphrase',
    args: ['-t', 'rsa', '-b', '2048', '-m', 'PKCS8', '-N', PASSPHRASE],
    problem: 'encrypted',
  },
];

const keyPath = (name: string) => join(dir, name);
/** A line of the key's body, which no message may quote. */
const keyMaterial = (name: string) => readFileSync(keyPath(name), 'utf8').split('\n')[1];

beforeAll(() => {
  for (const kind of KINDS) {
    const args = kind.args.includes('-N') ? kind.args : [...kind.args, '-N', ''];
    execFileSync('ssh-keygen', ['-q', ...args, '-C', 'bottle-test', '-f', keyPath(kind.name)], { stdio: 'ignore' });
  }
  writeFileSync(keyPath('not-a-key'), 'hello\n');
}, 60_000);

async function refusalOf(run: () => Promise<unknown>): Promise<BottleError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof BottleError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('checkSshPrivateKey (the one check of the CLI and the gateway)', () => {
  it.each(KINDS)('$name: $problem', ({ name, problem }) => {
    const check = checkSshPrivateKey(readFileSync(keyPath(name), 'utf8'));
    expect(check.problem).toBe(problem);
    if (!problem) expect(check.key?.isPrivateKey()).toBe(true);
  });

  it('finds a public key and a file that is no key', () => {
    expect(checkSshPrivateKey(readFileSync(`${keyPath('ed25519')}.pub`, 'utf8')).problem).toBe('public');
    expect(checkSshPrivateKey('hello\n').problem).toBe('unsupported');
  });
});

describe('the CLI refuses at start exactly the keys the gateway refuses', () => {
  const planWith = (path: string) =>
    ({ credentials: [], ssh: [{ Host: 'git.test', IdentityFile: path }] }) as unknown as BottlePlan;

  it.each(KINDS)('$name', async ({ name, problem }) => {
    const path = keyPath(name);
    const text = readFileSync(path, 'utf8');
    const gateway = () => loadSshKeys([sshKeyId(0)], { [sshKeyId(0)]: text });
    if (!problem) {
      expect(await resolveSecrets(planWith(path), [])).toEqual({ [sshKeyId(0)]: text });
      expect(gateway()).toHaveLength(1);
      return;
    }
    expect(gateway).toThrow(SshKeyError);
    const refusal = await refusalOf(() => resolveSecrets(planWith(path), []));
    expect(refusal.exitCode).toBe(2);
    expect(refusal.message).not.toContain('\n');
    expect(refusal.message).not.toContain(keyMaterial(name));
    expect(refusal.message.startsWith(`ssh entry git.test: IdentityFile ${path} `)).toBe(true);
  });

  it('says a PKCS#8 key is one and how to convert it', async () => {
    const path = keyPath('rsa-pkcs8');
    const refusal = await refusalOf(() => readSshPrivateKey('git.test', path));
    expect(refusal.message).toBe(
      `ssh entry git.test: IdentityFile ${path} is a PKCS#8 key (BEGIN PRIVATE KEY), which the gateway's ` +
        'ssh library (ssh2) cannot read; convert it to the OpenSSH format with ' +
        `\`ssh-keygen -p -N '' -m RFC4716 -f ${path}\``,
    );
  });

  it('says a key with a passphrase has one, whatever its format', async () => {
    for (const name of ['ed25519-passphrase', 'rsa-pem-passphrase', 'rsa-pkcs8-passphrase']) {
      const refusal = await refusalOf(() => readSshPrivateKey('git.test', keyPath(name)));
      expect(refusal.message).toMatch(/is protected by a passphrase.*name a key without one/);
    }
  });

  it('the conversion it suggests gives a key both accept', async () => {
    const path = keyPath('converted');
    writeFileSync(path, readFileSync(keyPath('rsa-pkcs8')), { mode: 0o600 });
    execFileSync('ssh-keygen', ['-p', '-N', '', '-m', 'RFC4716', '-f', path], { stdio: 'ignore' });
    expect(checkSshPrivateKey(await readSshPrivateKey('git.test', path)).key?.type).toBe('ssh-rsa');
  });

  it('refuses a public key and a file that is no key with exit 2, an unreadable file with exit 1', async () => {
    const publicKey = await refusalOf(() => readSshPrivateKey('h', `${keyPath('ed25519')}.pub`));
    expect([publicKey.exitCode, publicKey.message]).toEqual([
      2,
      expect.stringMatching(/is a public key.*without \.pub/),
    ]);
    const notAKey = await refusalOf(() => readSshPrivateKey('h', keyPath('not-a-key')));
    expect([notAKey.exitCode, notAKey.message]).toEqual([2, expect.stringMatching(/is not an ssh private key/)]);
    const missing = await refusalOf(() => readSshPrivateKey('h', keyPath('missing')));
    expect([missing.exitCode, missing.message]).toEqual([
      1,
      `ssh entry h: cannot read IdentityFile ${keyPath('missing')} (ENOENT)`,
    ]);
  });

  it('quotes a path with spaces in the command it suggests', async () => {
    const path = join(dir, "my key's copy");
    writeFileSync(path, readFileSync(keyPath('ecdsa-pkcs8')), { mode: 0o600 });
    const refusal = await refusalOf(() => readSshPrivateKey('h', path));
    expect(refusal.message).toContain(`-f '${dir}/my key'\\''s copy'\``);
  });
});
