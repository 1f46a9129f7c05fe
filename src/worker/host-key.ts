import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bottleHome } from '../shared/paths.js';
import {
  generateHostKeyPair,
  hostKeyPairFromPem,
  privateKeyToPem,
  type HostKeyPair,
} from '../shared/sealed-secrets.js';

/**
 * A host's key pair: the private key stays in a 0600 file under the worker's
 * home, created on its first start; the public key is published in Redis
 * under the host id (beside the heartbeat, and kept when the worker is down,
 * so a CLI can seal for a bottle that waits for its host).
 */
export function hostKeyPath(hostId: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(bottleHome(env), 'host-keys', `${hostId}.pem`);
}

export function loadOrCreateHostKey(hostId: string, env: NodeJS.ProcessEnv = process.env): HostKeyPair {
  const path = hostKeyPath(hostId, env);
  try {
    return hostKeyPairFromPem(readFileSync(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the host key ${path}: ${(err as Error).message}`);
    }
  }
  const keys = generateHostKeyPair();
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  // 'wx': two workers of one host starting at once must not overwrite each other's key.
  try {
    writeFileSync(path, privateKeyToPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return hostKeyPairFromPem(readFileSync(path, 'utf8'));
    throw err;
  }
  chmodSync(path, 0o600);
  return keys;
}
