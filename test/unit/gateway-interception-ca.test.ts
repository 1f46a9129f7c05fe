import { X509Certificate } from 'node:crypto';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createInterceptionCa } from '../../src/gateway/interception-ca.js';

/** The per-run CA the gateway uses to terminate TLS for credential-route hosts. */
describe('interception CA', () => {
  const ca = createInterceptionCa('implementer-ab12c');

  it('is a CA certificate named after the bottle, valid now, carrying no key', () => {
    const cert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('claude-bottle gateway CA implementer-ab12c');
    expect(Date.parse(cert.validFrom)).toBeLessThan(Date.now());
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now());
    expect(ca.certificatePem).not.toMatch(/PRIVATE KEY/);
  });

  it('a fresh CA per gateway run: two runs never share a certificate', () => {
    expect(createInterceptionCa('implementer-ab12c').certificatePem).not.toBe(ca.certificatePem);
  });

  it('serves a leaf for the host that a client trusting only this CA accepts, and one for another host it rejects', async () => {
    const host = 'api.github.test';
    const server = createServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, (socket) => socket.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const handshake = (servername: string, checkAs: string) =>
      new Promise<string>((resolve, reject) => {
        const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, ca: [ca.certificatePem], checkServerIdentity: (_h, cert) => (cert.subjectaltname === `DNS:${checkAs}` ? undefined : new Error(`certificate is for ${cert.subjectaltname}`)) });
        socket.on('secureConnect', () => {
          const leaf = socket.getPeerX509Certificate()!;
          resolve(`${leaf.checkHost(checkAs) ?? 'no match'} issued-by-ca=${leaf.checkIssued(new X509Certificate(ca.certificatePem))}`);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    try {
      expect(await handshake(host, host)).toBe(`${host} issued-by-ca=true`);
      await expect(handshake('other.test', host)).rejects.toThrow(/certificate is for DNS:other.test/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('is refused by a client that trusts only the system roots', async () => {
    const server = createServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, (socket) => socket.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      await expect(
        new Promise((resolve, reject) => {
          const socket = connect({ host: '127.0.0.1', port, servername: 'api.github.test' });
          socket.on('secureConnect', () => resolve(socket.destroy()));
          socket.on('error', reject);
        }),
      ).rejects.toThrow(/self.signed|unable to (get|verify)/i);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
