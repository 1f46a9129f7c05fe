import { X509Certificate } from 'node:crypto';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { createInterceptionCa } from '../../src/gateway/interception-ca.js';

/** The per-run CA the gateway uses to terminate TLS for credential-route hosts. */
describe('interception CA', () => {
  const ca = createInterceptionCa('implementer-ab12c', ['api.github.test', 'registry.npm.test']);

  it('is a CA certificate named after the bottle, valid now, carrying no key', () => {
    const cert = new X509Certificate(ca.certificatePem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('claude-bottle gateway CA implementer-ab12c');
    expect(Date.parse(cert.validFrom)).toBeLessThan(Date.now());
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now());
    expect(ca.certificatePem).not.toMatch(/PRIVATE KEY/);
  });

  it('a fresh CA per gateway run: two runs never share a certificate', () => {
    expect(createInterceptionCa('implementer-ab12c', ['api.github.test']).certificatePem).not.toBe(ca.certificatePem);
  });

  it('is name-constrained (critical) to the route hosts, and signs leaves for nothing else', () => {
    const parsed = forge.pki.certificateFromPem(ca.certificatePem);
    const constraints = parsed.getExtension('nameConstraints') as { critical?: boolean; permittedSubtrees?: Array<{ type: number; value: string }> } | null;
    expect(constraints?.critical).toBe(true);
    expect(constraints?.permittedSubtrees?.map((t) => t.value)).toEqual(['api.github.test', 'registry.npm.test']);
    expect(() => ca.contextFor('evil.test')).toThrow(/not valid for evil.test/);
  });

  it('serves a leaf for a route host that a client trusting only this CA accepts', async () => {
    const host = 'api.github.test';
    const server = createServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, (socket) => socket.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const verdict = await new Promise<string>((resolve, reject) => {
        const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: host, ca: [ca.certificatePem] });
        socket.on('secureConnect', () => {
          const leaf = socket.getPeerX509Certificate()!;
          resolve(`${leaf.checkHost(host) ?? 'no match'} issued-by-ca=${leaf.checkIssued(new X509Certificate(ca.certificatePem))}`);
          socket.destroy();
        });
        socket.on('error', reject);
      });
      expect(verdict).toBe(`${host} issued-by-ca=true`);
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
