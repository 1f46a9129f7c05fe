import { randomBytes } from 'node:crypto';

/** One WebSocket frame as a client sends it (RFC 6455 section 5.2): always masked. */
export interface ClientFrame {
  opcode: 'text' | 'binary' | 'continuation';
  payload: Buffer;
  /** false for every fragment of a message but its last. */
  fin?: boolean;
  /** The per-message-compression bit, set without the extension having been agreed. */
  rsv1?: boolean;
}

const OPCODES = { continuation: 0x0, text: 0x1, binary: 0x2 } as const;

export function encodeClientFrame(frame: ClientFrame): Buffer {
  const { payload } = frame;
  const first = ((frame.fin ?? true) ? 0x80 : 0) | (frame.rsv1 ? 0x40 : 0) | OPCODES[frame.opcode];
  const length =
    payload.length < 126
      ? Buffer.from([first, 0x80 | payload.length])
      : payload.length < 65_536
        ? Buffer.from([first, 0x80 | 126, payload.length >> 8, payload.length & 0xff])
        : Buffer.concat([Buffer.from([first, 0x80 | 127]), bigEndian64(payload.length)]);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
  return Buffer.concat([length, mask, masked]);
}

export function encodeClientFrames(frames: readonly ClientFrame[]): Buffer {
  return Buffer.concat(frames.map(encodeClientFrame));
}

function bigEndian64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
