import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../shared/errors.js';
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

export interface HostKeyOptions {
  /** Told when a key file's mode had to be tightened. */
  warn?: (line: string) => void;
  /** Whose key it must be; defaults to this process's uid. */
  uid?: number;
}

export function loadOrCreateHostKey(
  hostId: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: HostKeyOptions = {},
): HostKeyPair {
  const path = hostKeyPath(hostId, env);
  const existing = readOwnKey(path, opts);
  if (existing !== undefined) return hostKeyPairFromPem(existing);
  const keys = generateHostKeyPair();
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  // 'wx': two workers of one host starting at once must not overwrite each other's key.
  try {
    writeFileSync(path, privateKeyToPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return hostKeyPairFromPem(readOwnKey(path, opts)!);
    throw err;
  }
  chmodSync(path, 0o600);
  return keys;
}

/**
 * The key file's text, undefined when there is none. A key someone else owns is refused: its owner
 * could replace it, and the worker would open secrets sealed to a key it does not control. One of
 * ours that group or others may read (a copy or a restore that kept a looser mode) is made 0600
 * and said, not refused: the worker can put it right itself, and whether it was read meanwhile is
 * for the operator to judge.
 */
function readOwnKey(path: string, opts: HostKeyOptions): string | undefined {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    throw new Error(`cannot read the host key ${path}: ${(err as Error).message}`);
  }
  if (!stats) return undefined;
  const { mode, uid: owner } = stats;
  const uid = opts.uid ?? process.getuid?.();
  if (uid !== undefined && owner !== uid) {
    throw new UsageError(
      `the host key ${path} belongs to uid ${owner}, not to this worker (uid ${uid}); ` +
        'run the worker as its owner, or remove the file to make a new key',
    );
  }
  if ((mode & 0o077) !== 0) {
    chmodSync(path, 0o600);
    opts.warn?.(
      `the host key ${path} was readable by group or others (mode ${(mode & 0o777).toString(8)}); ` +
        'made it 0600. If someone else may have read it, remove it and restart the worker for a new key',
    );
  }
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the host key ${path}: ${(err as Error).message}`);
  }
}
