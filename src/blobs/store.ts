import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UsageError } from '../shared/errors.js';
import { formatBytes } from '../shared/format-bytes.js';

/**
 * Content-addressed blobs in Redis: what a bottle needs from the CLI's machine
 * (a Dockerfile's build context, the prompt, skills, a copied working folder)
 * reaches the worker of another machine this way. A blob is named by the
 * sha256 of its bytes, so the same content is sent once; each use renews its
 * expiry, and the worker checks the bytes against the name.
 */
const BLOB_PREFIX = 'cb:blob:';
const BLOB_TTL_SECONDS = 7 * 24 * 3600;
export const UPLOAD_LIMIT_ENV = 'CLAUDE_BOTTLE_UPLOAD_LIMIT_MB';
const DEFAULT_UPLOAD_LIMIT_MB = 256;

/** The largest blob the CLI sends, from the environment (whole MiB) or the default. */
export function uploadLimitBytes(env: NodeJS.ProcessEnv = process.env): number {
  const configured = env[UPLOAD_LIMIT_ENV];
  if (configured === undefined || configured === '') return DEFAULT_UPLOAD_LIMIT_MB * 1024 * 1024;
  const mb = Number(configured);
  if (!Number.isInteger(mb) || mb < 1) {
    throw new UsageError(
      `${UPLOAD_LIMIT_ENV} must be a whole number of MiB (at least 1), got ${JSON.stringify(configured)}`,
    );
  }
  return mb * 1024 * 1024;
}

export function blobName(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class UploadTooLargeError extends UsageError {
  constructor(what: string, size: number, limit: number) {
    super(
      `${what} is ${formatBytes(size)}, over the upload limit of ${Math.floor(limit / 1024 / 1024)} MiB ` +
        `(${UPLOAD_LIMIT_ENV}); make it smaller, or raise the limit`,
    );
  }
}

export interface StoredBlob {
  blob: string;
  bytes: number;
  /** False when Redis already held the same content, which was then not sent again. */
  sent: boolean;
}

/** Stores `bytes` unless the same content is there already; `what` names it in the over-limit error. */
export async function putBlob(redis: Redis, bytes: Buffer, what: string, limit: number): Promise<StoredBlob> {
  if (bytes.length > limit) {
    throw new UploadTooLargeError(what, bytes.length, limit);
  }
  const blob = blobName(bytes);
  const key = `${BLOB_PREFIX}${blob}`;
  // EXPIRE answers 0 when the key is absent: only then are the bytes sent.
  if ((await redis.expire(key, BLOB_TTL_SECONDS)) === 1) return { blob, bytes: bytes.length, sent: false };
  await redis.set(key, bytes, 'EX', BLOB_TTL_SECONDS);
  return { blob, bytes: bytes.length, sent: true };
}

export class MissingBlobError extends Error {}

/** The blob's bytes, checked against its name. */
export async function getBlob(redis: Redis, blob: string): Promise<Buffer> {
  const bytes = await redis.getBuffer(`${BLOB_PREFIX}${blob}`);
  if (bytes === null) {
    throw new MissingBlobError(
      `uploaded content ${blob.slice(0, 12)} is no longer in Redis (expired or removed); ` +
        'start or resume the bottle again',
    );
  }
  if (blobName(bytes) !== blob)
    throw new MissingBlobError(`uploaded content ${blob.slice(0, 12)} does not match its name`);
  return bytes;
}
