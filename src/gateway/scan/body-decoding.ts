import { constants, createBrotliDecompress, createGunzip, createInflate, type Gunzip } from 'node:zlib';
import type { Transform } from 'node:stream';

/**
 * Request bodies sent compressed (Content-Encoding) are decoded for scanning only; the bytes that go on
 * are the ones the agent sent. Decoding stops at a bound: a body that inflates past it, or in an
 * encoding not read here, is refused rather than passed unread.
 */
export const MAX_DECODED_BODY_BYTES = 64 * 1024 * 1024;

export type BodyEncoding = 'identity' | 'gzip' | 'deflate' | 'br';

/** The one encoding of a Content-Encoding header, or undefined when it names one not decoded here (or several). */
export function bodyEncoding(header: string | string[] | undefined): BodyEncoding | undefined {
  const value = (Array.isArray(header) ? header.join(',') : (header ?? '')).trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate') return 'deflate';
  if (value === 'br') return 'br';
  return undefined;
}

export function decoderFor(encoding: Exclude<BodyEncoding, 'identity'>): Transform {
  switch (encoding) {
    case 'gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
  }
}

/**
 * Feeds `chunk` to the decoder and calls `done` once everything it decodes from it has been handed to
 * `onData`, so the chunk is passed on only after what it carried has been scanned.
 */
export function decodeChunk(decoder: Transform, chunk: Buffer, done: () => void): void {
  if (decoder.destroyed) return done();
  let settled = false;
  const finish = () => {
    if (settled) return;
    settled = true;
    decoder.off('error', finish);
    done();
  };
  decoder.once('error', finish);
  decoder.write(chunk);
  const kind = decoder.constructor.name.startsWith('Brotli')
    ? constants.BROTLI_OPERATION_FLUSH
    : constants.Z_SYNC_FLUSH;
  (decoder as unknown as Gunzip).flush(kind, finish);
}

/** Ends the decoder and calls `done` once, when it has ended or failed. */
export function endDecoder(decoder: Transform, done: () => void): void {
  if (decoder.destroyed) return done();
  let settled = false;
  const finish = () => {
    if (settled) return;
    settled = true;
    done();
  };
  decoder.once('end', finish);
  decoder.once('error', finish);
  decoder.end();
  decoder.resume();
}
