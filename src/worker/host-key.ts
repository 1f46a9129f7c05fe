import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { bottleHome } from '../shared/paths.js';
import {
  generateHostKeyPair,
  hostKeyPairFromPem,
  privateKeyToPem,
  SealedSecretsSchema,
  type HostKeyPair,
  type SealedSecrets,
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

const HOST_KEY_PREFIX = 'cb:host-key:';

export async function publishHostKey(redis: Redis, hostId: string, publicKey: string): Promise<void> {
  await redis.set(`${HOST_KEY_PREFIX}${hostId}`, publicKey);
}

/** The public key the host's worker last published; undefined when no worker of it ever started. */
export async function readHostPublicKey(redis: Redis, hostId: string): Promise<string | undefined> {
  return (await redis.get(`${HOST_KEY_PREFIX}${hostId}`)) ?? undefined;
}

/**
 * A launch's sealed secrets wait here, keyed by bottle, between the command
 * that brought them and the gateway that takes them; they are ciphertext only
 * the host's worker can open. Every way out of a launch discards them; the
 * expiry bounds a blob whose launch never ran.
 */
const SEALED_PREFIX = 'cb:sealed:';
const SEALED_TTL_SECONDS = 24 * 3600;

export async function storeSealedSecrets(redis: Redis, identity: string, blob: SealedSecrets): Promise<void> {
  await redis.set(`${SEALED_PREFIX}${identity}`, JSON.stringify(blob), 'EX', SEALED_TTL_SECONDS);
}

export async function readSealedSecrets(redis: Redis, identity: string): Promise<SealedSecrets | undefined> {
  const text = await redis.get(`${SEALED_PREFIX}${identity}`);
  if (text === null) return undefined;
  const parsed = SealedSecretsSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`the sealed secrets stored for ${identity} are malformed`);
  return parsed.data;
}

export async function discardSealedSecrets(redis: Redis, identity: string): Promise<void> {
  await redis.del(`${SEALED_PREFIX}${identity}`);
}
