import { Transform, type TransformCallback } from 'node:stream';
import { ScanBlockedError, type ScanFinding } from './request-scanner.js';

/**
 * Reads the WebSocket frames a client sends (RFC 6455 section 5.2) and lets
 * each one on only after its payload was looked at, so a frame that must be
 * blocked never reaches the upstream whole. One frame at a time is held, at
 * most MAX_FRAME_BYTES; a bigger frame is refused rather than held. Frames
 * are passed on byte for byte (still masked); compression is kept off by the
 * caller (the extensions header is not forwarded), so payloads are plain.
 */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

const CONTROL_OPCODES = new Set([0x8, 0x9, 0xa]);
const CONTINUATION_OPCODE = 0x0;

export class FrameTooLargeError extends Error {
  constructor() {
    super(`a WebSocket frame over ${MAX_FRAME_BYTES} bytes`);
    this.name = 'FrameTooLargeError';
  }
}

/**
 * `check` sees each data frame's unmasked payload, and whether it starts a message (a continuation fragment
 * does not); throwing from it destroys the stream with that error.
 */
export function frameGate(check: (payload: Buffer, startsMessage: boolean) => void): Transform {
  let pending: Buffer = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      try {
        for (;;) {
          const frame = nextFrame(pending);
          if (frame === null) break;
          if (frame.reserved !== 0) throw new ScanBlockedError(RESERVED_BITS_FINDING);
          if (!CONTROL_OPCODES.has(frame.opcode)) check(frame.payload, frame.opcode !== CONTINUATION_OPCODE);
          this.push(pending.subarray(0, frame.length));
          pending = pending.subarray(frame.length);
        }
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    },
  });
}

/**
 * A frame with RSV1-3 set claims an extension (per-message compression) that was never agreed, since the
 * extensions header is not forwarded: its payload may be compressed and cannot be read, so it is refused.
 */
const RESERVED_BITS_FINDING: ScanFinding = {
  action: 'block',
  reason: 'body_unscannable',
  detail: { class: 'body_unscannable', rule: 'websocket frame with reserved bits set', where: 'frame' },
};

interface Frame {
  opcode: number;
  /** RSV1-3 as they are in the first byte. */
  reserved: number;
  /** Header, mask key and payload: the bytes to pass on. */
  length: number;
  payload: Buffer;
}

/** The first whole frame in `bytes`, or null while more bytes are needed. */
export function nextFrame(bytes: Buffer): Frame | null {
  if (bytes.length < 2) return null;
  const opcode = bytes[0] & 0x0f;
  const masked = (bytes[1] & 0x80) !== 0;
  let payloadLength = bytes[1] & 0x7f;
  let offset = 2;
  if (payloadLength === 126) {
    if (bytes.length < 4) return null;
    payloadLength = bytes.readUInt16BE(2);
    offset = 4;
  } else if (payloadLength === 127) {
    if (bytes.length < 10) return null;
    const long = bytes.readBigUInt64BE(2);
    if (long > BigInt(MAX_FRAME_BYTES)) throw new FrameTooLargeError();
    payloadLength = Number(long);
    offset = 10;
  }
  if (payloadLength > MAX_FRAME_BYTES) throw new FrameTooLargeError();
  const maskAt = offset;
  if (masked) offset += 4;
  const length = offset + payloadLength;
  if (bytes.length < length) return null;
  const payload = Buffer.from(bytes.subarray(offset, length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= bytes[maskAt + (i % 4)];
  return { opcode, reserved: bytes[0] & 0x70, length, payload };
}
