import { Transform, type TransformCallback } from 'node:stream';
import { ScanBlockedError, type ScanFinding } from '../request-scanner.js';
import { bodyEncoding, decodeChunk, decoderFor, endDecoder, MAX_DECODED_BODY_BYTES } from './body-decoding.js';
import { ChunkInspector } from './body-inspector.js';
import { unscannableFinding } from './findings.js';

/**
 * The request body's pass-through: a chunk goes on only after it has been scanned. Plain bodies keep
 * back the bytes a match could still be completed by, so a held secret split across chunks never
 * leaves whole; compressed ones go on chunk by chunk once their decoded text has been scanned.
 */
export interface BodyStreamParts {
  inspector: ChunkInspector;
  contentEncoding: string | string[] | undefined;
  onAudit: (finding: ScanFinding) => void;
  /** Called with the first bytes of the decoded body once it ends (the split-secret window). */
  onEnd: (head: Buffer) => ScanFinding | undefined;
}

const HEAD_BYTES = 64 * 1024;

export function scanningBodyStream(parts: BodyStreamParts): Transform {
  const encoding = bodyEncoding(parts.contentEncoding);
  const decoder = encoding && encoding !== 'identity' ? decoderFor(encoding) : undefined;
  const headChunks: Buffer[] = [];
  let headBytes = 0;
  let decodedBytes = 0;
  let blocked: ScanFinding | undefined;
  let held: Buffer = Buffer.alloc(0);

  const look = (decoded: Buffer): void => {
    if (blocked) return;
    decodedBytes += decoded.length;
    // Only inflation is bounded: a plain body is scanned as it streams, whatever its length.
    if (decoder && decodedBytes > MAX_DECODED_BODY_BYTES) {
      blocked = unscannableFinding(`decoded body over ${MAX_DECODED_BODY_BYTES} bytes`);
      return;
    }
    if (headBytes < HEAD_BYTES) {
      const part = decoded.subarray(0, HEAD_BYTES - headBytes);
      headChunks.push(Buffer.from(part));
      headBytes += part.length;
    }
    for (const finding of parts.inspector.inspect(decoded)) {
      if (finding.action === 'block') blocked = finding;
      else parts.onAudit(finding);
    }
  };
  decoder?.on('data', look);
  decoder?.on('error', (err: Error) => {
    blocked ??= unscannableFinding(`${encoding} body does not decode (${err.message})`);
  });
  const failIfBlocked = (callback: TransformCallback): boolean => {
    if (!blocked) return false;
    decoder?.destroy();
    callback(new ScanBlockedError(blocked));
    return true;
  };

  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      if (encoding === undefined) {
        blocked = unscannableFinding(`content-encoding ${String(parts.contentEncoding)} is not decoded for scanning`);
        failIfBlocked(callback);
        return;
      }
      if (decoder) {
        decodeChunk(decoder, chunk, () => {
          if (!failIfBlocked(callback)) callback(null, chunk);
        });
        return;
      }
      look(chunk);
      if (failIfBlocked(callback)) return;
      // Nothing held back (the usual case): the chunk itself, not a copy of it.
      const pending = held.length > 0 ? Buffer.concat([held, chunk]) : chunk;
      const keep = parts.inspector.pendingTail(pending);
      held = Buffer.from(pending.subarray(pending.length - keep));
      callback(null, pending.subarray(0, pending.length - keep));
    },
    flush(callback) {
      const finish = () => {
        if (failIfBlocked(callback)) return;
        blocked = parts.onEnd(Buffer.concat(headChunks));
        if (failIfBlocked(callback)) return;
        callback(null, held.length > 0 ? held : undefined);
      };
      if (!decoder) return finish();
      endDecoder(decoder, finish);
    },
  });
}
