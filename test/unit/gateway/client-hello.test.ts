import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from '../../../src/gateway/client-hello.js';

/** Captures the real first flight Node's TLS client sends, via a loopback server that never answers. */
async function captureClientHello(port: number, servername: string | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    socket.on('error', () => {});
    captured.once('hello', (bytes: Buffer) => {
      socket.destroy();
      resolve(bytes);
    });
    setTimeout(() => reject(new Error('no ClientHello captured')), 5000).unref();
  });
}

const captured = new EventEmitter();
const server = createServer((socket) => {
  let bytes = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    bytes = Buffer.concat([bytes, chunk]);
    if (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt16BE(3)) {
      captured.emit('hello', bytes);
      socket.destroy();
    }
  });
  socket.on('error', () => {});
});
let port = 0;
let withSni: Buffer;
let withoutSni: Buffer;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  withSni = await captureClientHello(port, 'api.example.test');
  withoutSni = await captureClientHello(port, ''); // empty servername: Node sends no SNI
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Re-frames the handshake payload of a single-record ClientHello into two TLS records. */
function splitIntoTwoRecords(hello: Buffer, at: number): Buffer {
  const payload = hello.subarray(5);
  const record = (part: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, part.length >> 8, part.length & 0xff]), part]);
  return Buffer.concat([record(payload.subarray(0, at)), record(payload.subarray(at))]);
}

describe('parseClientHello', () => {
  it('reads the server name from a real ClientHello', () => {
    expect(parseClientHello(withSni)).toEqual({ status: 'parsed', serverName: 'api.example.test' });
  });

  it('reports no server name when the client sent none', () => {
    expect(parseClientHello(withoutSni)).toEqual({ status: 'parsed', serverName: null });
  });

  it('asks for more bytes while the record is incomplete, at every cut point', () => {
    for (let cut = 0; cut < withSni.length; cut += 7) {
      expect(parseClientHello(withSni.subarray(0, cut)).status).toBe('incomplete');
    }
  });

  it('reassembles a ClientHello split across two TLS records', () => {
    const split = splitIntoTwoRecords(withSni, 3);
    expect(parseClientHello(split)).toEqual({ status: 'parsed', serverName: 'api.example.test' });
    expect(parseClientHello(split.subarray(0, 5 + 3 + 2)).status).toBe('incomplete');
  });

  it('recognises a stream that is not TLS', () => {
    expect(parseClientHello(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))).toEqual({ status: 'not_tls' });
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ status: 'not_tls' });
  });

  it('calls a handshake record that is not a ClientHello malformed', () => {
    const serverHelloType = Buffer.from(withSni);
    serverHelloType[5] = 2;
    expect(parseClientHello(serverHelloType)).toEqual({ status: 'malformed' });
  });

  it('calls inner lengths that overrun the message malformed instead of reading past it', () => {
    const corrupt = Buffer.from(withSni);
    // Session-id length byte sits after record(5) + handshake header(4) + version(2) + random(32).
    corrupt[5 + 4 + 2 + 32] = 0xff;
    expect(parseClientHello(corrupt)).toEqual({ status: 'malformed' });
  });

  it('refuses a claimed handshake larger than the buffering limit', () => {
    const huge = Buffer.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]);
    expect(parseClientHello(huge)).toEqual({ status: 'malformed' });
    expect(MAX_CLIENT_HELLO_BYTES).toBeLessThan(0xffffff);
  });
});
