import type { Redis } from 'ioredis';
import { SealedSecretsSchema, type SealedSecrets } from '../shared/sealed-secrets.js';

/** Public keys of hosts, published by their workers; the CLI seals a launch's route secrets to them. */
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
