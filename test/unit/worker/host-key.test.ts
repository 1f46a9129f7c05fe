import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/shared/errors.js';
import { openSealedSecrets, sealSecrets } from '../../../src/shared/sealed-secrets.js';
import { hostKeyPath, loadOrCreateHostKey } from '../../../src/worker/host-key.js';

const SECRETS = { 'route-0': 'sk-ant-sealed-0123456789' };
const identity = 'claude-bottle-demo-1a2b3c';

describe("a worker's host key", () => {
  it('is created once, 0600 under its home, and read back the same on the next start', () => {
    const home = mkdtempSync(join(tmpdir(), 'cb-host-key-'));
    try {
      const env = { CLAUDE_BOTTLE_HOME: home };
      const first = loadOrCreateHostKey('A', env);
      expect(statSync(hostKeyPath('A', env)).mode & 0o777).toBe(0o600);
      expect(statSync(join(home, 'host-keys')).mode & 0o777).toBe(0o700);
      expect(loadOrCreateHostKey('A', env).publicKey).toBe(first.publicKey);
      expect(loadOrCreateHostKey('B', env).publicKey).not.toBe(first.publicKey);
      const blob = sealSecrets(SECRETS, { identity, host: 'A', publicKey: first.publicKey });
      expect(openSealedSecrets(blob, { identity, host: 'A', keys: loadOrCreateHostKey('A', env) })).toEqual(SECRETS);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('an existing host key file', () => {
  let home = '';
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  it('readable by group or others is made 0600 and said, and still used', () => {
    home = mkdtempSync(join(tmpdir(), 'cb-host-key-'));
    const env = { CLAUDE_BOTTLE_HOME: home };
    const first = loadOrCreateHostKey('A', env);
    chmodSync(hostKeyPath('A', env), 0o644);
    const said: string[] = [];
    expect(loadOrCreateHostKey('A', env, { warn: (l) => said.push(l) }).publicKey).toBe(first.publicKey);
    expect(statSync(hostKeyPath('A', env)).mode & 0o777).toBe(0o600);
    expect(said).toEqual([
      expect.stringMatching(/^the host key .*A\.pem was readable by group or others \(mode 644\)/),
    ]);
    // Already private: nothing to say.
    loadOrCreateHostKey('A', env, { warn: (l) => said.push(l) });
    expect(said).toHaveLength(1);
  });

  it('owned by another user is refused (exit 2), its mode left as it was', () => {
    home = mkdtempSync(join(tmpdir(), 'cb-host-key-'));
    const env = { CLAUDE_BOTTLE_HOME: home };
    loadOrCreateHostKey('A', env);
    chmodSync(hostKeyPath('A', env), 0o644);
    const owner = statSync(hostKeyPath('A', env)).uid;
    let thrown: unknown;
    try {
      loadOrCreateHostKey('A', env, { uid: owner + 1 });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as UsageError).exitCode).toBe(2);
    expect((thrown as UsageError).message).toMatch(new RegExp(`belongs to uid ${owner}, not to this worker`));
    expect(statSync(hostKeyPath('A', env)).mode & 0o777).toBe(0o644);
  });
});
