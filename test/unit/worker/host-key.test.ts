import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
