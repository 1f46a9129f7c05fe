import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseClientHello } from '../../../src/gateway/client-hello.js';
import { inspectTunnelStart, type TunnelVerdict } from '../../../src/gateway/tunnel-inspection.js';

/** A minimal, hand-built TLS 1.2-style ClientHello record carrying one server_name (or none). */
function clientHello(serverName: string | null): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const extensions: Buffer[] = [];
  if (serverName !== null) {
    const name = Buffer.from(serverName, 'ascii');
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    const list = Buffer.concat([u16(entry.length), entry]);
    extensions.push(Buffer.concat([u16(0), u16(list.length), list]));
  }
  // ec_point_formats, to have a non-SNI extension
  extensions.push(Buffer.concat([u16(0x000b), u16(2), Buffer.from([1, 0])]));
  const extensionBlock = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // session id
    u16(2),
    Buffer.from([0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // compression: null
    u16(extensionBlock.length),
    extensionBlock,
  ]);
  const handshake = Buffer.concat([
    Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(handshake.length), handshake]);
}

function inspect(
  head: Buffer,
  host: string,
  feed: Buffer[] = [],
  timeoutMs = 1000,
  port = 443,
  end = false,
): Promise<TunnelVerdict> {
  const client = new PassThrough();
  return new Promise((resolve) => {
    inspectTunnelStart(client, head, { host, port }, resolve, timeoutMs);
    for (const chunk of feed) client.write(chunk);
    if (end) client.end();
  });
}

describe('hand-built ClientHello fixtures', () => {
  it('parse to the server name they carry', () => {
    expect(parseClientHello(clientHello('allowed.test'))).toEqual({ status: 'parsed', serverName: 'allowed.test' });
    expect(parseClientHello(clientHello(null))).toEqual({ status: 'parsed', serverName: null });
  });
});

describe('inspectTunnelStart', () => {
  it('releases a ClientHello naming the CONNECT host, with every buffered byte', async () => {
    const hello = clientHello('Allowed.Test');
    const verdict = await inspect(Buffer.alloc(0), 'allowed.test', [hello.subarray(0, 10), hello.subarray(10)]);
    expect(verdict).toEqual({ ok: true, kind: 'tls', buffered: hello });
  });

  it('judges bytes that arrived with the CONNECT request itself', async () => {
    const hello = clientHello('other.test');
    expect(await inspect(hello, 'allowed.test')).toMatchObject({ ok: false, reason: 'tls_sni_mismatch' });
  });

  it('refuses a ClientHello naming another host', async () => {
    expect(await inspect(Buffer.alloc(0), 'allowed.test', [clientHello('evil.test')])).toMatchObject({
      ok: false,
      reason: 'tls_sni_mismatch',
    });
  });

  it('refuses a ClientHello without SNI to a named host (nothing ties it to the CONNECT host)', async () => {
    expect(await inspect(Buffer.alloc(0), 'allowed.test', [clientHello(null)])).toMatchObject({
      ok: false,
      reason: 'tls_no_sni',
    });
  });

  it('releases a ClientHello without SNI to an IP address (an address has no name to send)', async () => {
    expect(await inspect(Buffer.alloc(0), '203.0.113.7', [clientHello(null)])).toMatchObject({ ok: true, kind: 'tls' });
  });

  it('releases an HTTP request line, even split across segments, for the proxy to check each Host', async () => {
    const request = Buffer.from('GET /x HTTP/1.1\r\nHost: allowed.test\r\n\r\n');
    const verdict = await inspect(
      Buffer.alloc(0),
      'allowed.test',
      [request.subarray(0, 5), request.subarray(5)],
      1000,
      80,
    );
    expect(verdict).toEqual({ ok: true, kind: 'http', buffered: request });
  });

  it('releases an SSH identification line on port 22 only', async () => {
    const banner = Buffer.from('SSH-2.0-OpenSSH_9.2\r\n');
    expect(await inspect(Buffer.alloc(0), 'github.test', [banner], 1000, 22)).toEqual({
      ok: true,
      kind: 'ssh',
      buffered: banner,
    });
    expect(await inspect(Buffer.alloc(0), 'github.test', [banner], 1000, 443)).toMatchObject({
      ok: false,
      reason: 'tunnel_unrecognized',
    });
  });

  it.each([
    ['binary junk', Buffer.from([0x00, 0x01, 0x02, 0xff])],
    ['a line that is no request', Buffer.from('HELLO THERE\r\n')],
    ['a request line of another protocol', Buffer.from('GET / RTSP/1.0\r\n')],
  ])('refuses %s (tunnel_unrecognized)', async (_what, bytes) => {
    expect(await inspect(Buffer.alloc(0), 'allowed.test', [bytes])).toMatchObject({
      ok: false,
      reason: 'tunnel_unrecognized',
    });
  });

  it('refuses a client that half-closes before sending anything recognisable', async () => {
    expect(await inspect(Buffer.alloc(0), 'allowed.test', [Buffer.from('GET /')], 1000, 80, true)).toMatchObject({
      ok: false,
      reason: 'tunnel_unrecognized',
    });
  });

  it('gives up on a ClientHello that never completes', async () => {
    const partial = clientHello('allowed.test').subarray(0, 20);
    expect(await inspect(Buffer.alloc(0), 'allowed.test', [partial], 50)).toMatchObject({
      ok: false,
      reason: 'bad_request',
    });
  });
});
