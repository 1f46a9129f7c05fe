import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { z } from 'zod';

/**
 * Route secrets travel from the CLI to the worker of the bottle's host sealed
 * to that host's X25519 public key: an ephemeral key agreement, HKDF-SHA256,
 * then AES-256-GCM. The bottle's identity and host are bound in as associated
 * data, so a blob sealed for one bottle or host opens for no other. Only the
 * host's worker holds the private key; nothing here touches disk or Redis.
 */
export const SEALED_SECRETS_SCHEME = 'x25519-hkdf-sha256-aes-256-gcm';

const base64 = z.string().regex(/^[A-Za-z0-9+/=_-]+$/);
export const SealedSecretsSchema = z
  .object({
    scheme: z.literal(SEALED_SECRETS_SCHEME),
    host: z.string().min(1),
    key_id: z.string().min(1),
    ephemeral_key: base64,
    salt: base64,
    iv: base64,
    ciphertext: base64,
    tag: base64,
  })
  .strict();
export type SealedSecrets = z.infer<typeof SealedSecretsSchema>;

const SecretsSchema = z.record(z.string().min(1));

export class SealedSecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedSecretsError';
  }
}

export interface HostKeyPair {
  /** Raw X25519 public key, base64url: what the heartbeat publishes. */
  publicKey: string;
  privateKey: KeyObject;
}

export function generateHostKeyPair(): HostKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/** A short, stable name for a public key, so a blob says which key it needs. */
export function hostKeyId(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64url')).digest('hex').slice(0, 16);
}

export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function hostKeyPairFromPem(pem: string): HostKeyPair {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'x25519') throw new SealedSecretsError('the host key is not an X25519 key');
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.x) throw new SealedSecretsError('the host key has no public part');
  return jwk.x;
}

function publicKeyObject(publicKey: string): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey }, format: 'jwk' });
  } catch {
    throw new SealedSecretsError('the host public key is not a valid X25519 key');
  }
}

function associatedData(identity: string, host: string): Buffer {
  return Buffer.from(`claude-bottle sealed secrets\0${identity}\0${host}`, 'utf8');
}

function sealingKey(shared: Buffer, salt: Buffer, ephemeralKey: string, recipientKey: string): Buffer {
  const info = Buffer.from(`${SEALED_SECRETS_SCHEME}\0${ephemeralKey}\0${recipientKey}`, 'utf8');
  return Buffer.from(hkdfSync('sha256', shared, salt, info, 32));
}

export interface SealTarget {
  /** The bottle the secrets are for. */
  identity: string;
  /** The host the bottle is pinned to, and the public key its worker published. */
  host: string;
  publicKey: string;
}

export function sealSecrets(secrets: Record<string, string>, target: SealTarget): SealedSecrets {
  const recipient = publicKeyObject(target.publicKey);
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralKey = rawPublicKey(ephemeral.publicKey);
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = sealingKey(
    diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient }),
    salt,
    ephemeralKey,
    target.publicKey,
  );
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData(target.identity, target.host));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
  return {
    scheme: SEALED_SECRETS_SCHEME,
    host: target.host,
    key_id: hostKeyId(target.publicKey),
    ephemeral_key: ephemeralKey,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

export interface OpenAs {
  identity: string;
  host: string;
  keys: HostKeyPair;
}

/** Opens a blob in memory; refuses one sealed for another host, key or bottle, or altered on the way. */
export function openSealedSecrets(blob: SealedSecrets, as: OpenAs): Record<string, string> {
  if (blob.host !== as.host) {
    throw new SealedSecretsError(`the secrets were sealed for host ${blob.host}, but this worker serves ${as.host}`);
  }
  const keyId = hostKeyId(as.keys.publicKey);
  if (blob.key_id !== keyId) {
    throw new SealedSecretsError(
      `the secrets were sealed to key ${blob.key_id} of host ${blob.host}, but its worker now has key ${keyId}; ` +
        'start or resume the bottle again so they are sealed to the current key',
    );
  }
  let plaintext: string;
  try {
    const key = sealingKey(
      diffieHellman({ privateKey: as.keys.privateKey, publicKey: publicKeyObject(blob.ephemeral_key) }),
      Buffer.from(blob.salt, 'base64'),
      blob.ephemeral_key,
      as.keys.publicKey,
    );
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(blob.iv, 'base64'), {
      authTagLength: 16,
    });
    decipher.setAAD(associatedData(as.identity, as.host));
    decipher.setAuthTag(Buffer.from(blob.tag, 'base64'));
    plaintext = Buffer.concat([decipher.update(Buffer.from(blob.ciphertext, 'base64')), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    throw new SealedSecretsError(
      `the sealed secrets for ${as.identity} do not open with host ${as.host}'s key ` +
        '(sealed for another bottle, or altered on the way)',
    );
  }
  const parsed = SecretsSchema.safeParse(parseJson(plaintext));
  if (!parsed.success) throw new SealedSecretsError(`the sealed secrets for ${as.identity} are malformed`);
  return parsed.data;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
