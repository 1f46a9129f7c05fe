/**
 * Reads the server name (SNI) out of the first bytes a client sends through a
 * CONNECT tunnel. TLS is not HTTP, so Node's parser cannot help; this reads
 * only the few fields needed to reach the server_name extension (RFC 8446
 * 4.1.2, RFC 6066 3) and never decrypts anything.
 *
 * Results:
 * - `incomplete`: more bytes are needed (the ClientHello may span TCP
 *   segments and even several TLS records);
 * - `not_tls`: the stream does not start with a TLS handshake (e.g. SSH);
 * - `malformed`: it claims to be a ClientHello but lengths do not add up;
 * - `parsed`: `serverName` is the host name, or null when the client sent none.
 */
export type ClientHelloResult =
  | { status: 'incomplete' }
  | { status: 'not_tls' }
  | { status: 'malformed' }
  | { status: 'parsed'; serverName: string | null };

const RECORD_HEADER = 5;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;
/** A ClientHello is at most 2^24 bytes in theory; real ones are a few KB. Refuse to buffer more. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

export function parseClientHello(bytes: Buffer): ClientHelloResult {
  if (bytes.length === 0) return { status: 'incomplete' };
  if (bytes[0] !== CONTENT_TYPE_HANDSHAKE) return { status: 'not_tls' };
  if (bytes.length >= 2 && bytes[1] !== 3) return { status: 'not_tls' };

  // Reassemble the handshake layer from as many records as are needed.
  const fragments: Buffer[] = [];
  let fragmentBytes = 0;
  let offset = 0;
  let handshakeLength: number | null = null;
  while (handshakeLength === null || fragmentBytes < 4 + handshakeLength) {
    if (bytes.length < offset + RECORD_HEADER) return { status: 'incomplete' };
    if (bytes[offset] !== CONTENT_TYPE_HANDSHAKE) return { status: 'malformed' };
    const recordLength = bytes.readUInt16BE(offset + 3);
    if (recordLength === 0) return { status: 'malformed' };
    if (bytes.length < offset + RECORD_HEADER + recordLength) return { status: 'incomplete' };
    fragments.push(bytes.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + recordLength));
    fragmentBytes += recordLength;
    offset += RECORD_HEADER + recordLength;
    if (handshakeLength === null && fragmentBytes >= 4) {
      const head = Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return { status: 'malformed' };
      handshakeLength = head.readUIntBE(1, 3);
      if (handshakeLength + 4 > MAX_CLIENT_HELLO_BYTES) return { status: 'malformed' };
    }
  }
  const handshake = Buffer.concat(fragments);
  return readServerName(handshake.subarray(4, 4 + handshakeLength));
}

/** Walks the ClientHello body with bounds checks; any overrun means malformed. */
function readServerName(body: Buffer): ClientHelloResult {
  const reader = new BoundedReader(body);
  try {
    reader.skip(2 + 32); // legacy_version, random
    reader.skip(reader.u8()); // legacy_session_id
    reader.skip(reader.u16()); // cipher_suites
    reader.skip(reader.u8()); // legacy_compression_methods
    if (reader.remaining() === 0) return { status: 'parsed', serverName: null }; // no extensions at all
    const extensions = new BoundedReader(reader.take(reader.u16()));
    while (extensions.remaining() > 0) {
      const type = extensions.u16();
      const data = extensions.take(extensions.u16());
      if (type === EXTENSION_SERVER_NAME) return { status: 'parsed', serverName: readHostName(data) };
    }
    return { status: 'parsed', serverName: null };
  } catch (err) {
    if (err instanceof OutOfBounds) return { status: 'malformed' };
    throw err;
  }
}

function readHostName(extension: Buffer): string | null {
  const outer = new BoundedReader(extension);
  const list = new BoundedReader(outer.take(outer.u16()));
  while (list.remaining() > 0) {
    const nameType = list.u8();
    const name = list.take(list.u16());
    if (nameType === NAME_TYPE_HOST_NAME) {
      if (name.length === 0 || name.some((b) => b < 0x21 || b > 0x7e)) throw new OutOfBounds();
      return name.toString('ascii');
    }
  }
  return null;
}

class OutOfBounds extends Error {}

class BoundedReader {
  private position = 0;
  constructor(private readonly buffer: Buffer) {}
  remaining(): number {
    return this.buffer.length - this.position;
  }
  take(length: number): Buffer {
    if (length > this.remaining()) throw new OutOfBounds();
    const slice = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return slice;
  }
  skip(length: number): void {
    this.take(length);
  }
  u8(): number {
    return this.take(1)[0];
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
}
