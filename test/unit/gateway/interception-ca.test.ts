import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { createCaCertificate, createInterceptionCa } from '../../../src/gateway/interception-ca.js';

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
    const constraints = parsed.getExtension('nameConstraints') as {
      critical?: boolean;
      permittedSubtrees?: Array<{ type: number; value: string }>;
    } | null;
    expect(constraints?.critical).toBe(true);
    expect(constraints?.permittedSubtrees?.map((t) => t.value)).toEqual(['api.github.test', 'registry.npm.test']);
    expect(() => ca.contextFor('evil.test')).toThrow(/not valid for evil.test/);
  });

  it('serves a leaf for a route host that a client trusting only this CA accepts', async () => {
    const host = 'api.github.test';
    const server = createServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, (socket) =>
      socket.end('ok'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const verdict = await new Promise<string>((resolve, reject) => {
        const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: host, ca: [ca.certificatePem] });
        socket.on('secureConnect', () => {
          const leaf = socket.getPeerX509Certificate()!;
          const issuedByCa = leaf.checkIssued(new X509Certificate(ca.certificatePem));
          resolve(`${leaf.checkHost(host) ?? 'no match'} issued-by-ca=${issuedByCa}`);
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
    const server = createServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, (socket) =>
      socket.end('ok'),
    );
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

/**
 * What `openssl verify` says about a leaf signed by a CA made the way the
 * gateway makes its own (same code, same constraints), with the given SANs.
 */
function verifyLeaf(
  altNames: Array<{ type: 2; value: string } | { type: 7; ip: string }>,
  commonName: string,
): { ok: boolean; output: string } {
  const { certificate: caCert, privateKey } = createCaCertificate('implementer-ab12c', ['api.github.test'], new Date());
  const keys = forge.pki.rsa.generateKeyPair({ bits: 1024 });
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = keys.publicKey;
  leaf.serialNumber = '01';
  leaf.validity.notBefore = new Date(Date.now() - 60_000);
  leaf.validity.notAfter = new Date(Date.now() + 86_400_000);
  leaf.setSubject([{ name: 'commonName', value: commonName }]);
  leaf.setIssuer(caCert.subject.attributes);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  leaf.sign(privateKey, forge.md.sha256.create());
  const dir = mkdtempSync(join(tmpdir(), 'cb-ca-test-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), forge.pki.certificateToPem(caCert));
    writeFileSync(join(dir, 'leaf.pem'), forge.pki.certificateToPem(leaf));
    try {
      const output = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
      return { ok: true, output };
    } catch (err) {
      const failure = err as { stdout?: string; stderr?: string };
      return { ok: false, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('interception CA name constraints, checked by openssl verify', () => {
  it('control: a leaf for the route host verifies', () => {
    const result = verifyLeaf([{ type: 2, value: 'api.github.test' }], 'api.github.test');
    expect(result, result.output).toMatchObject({ ok: true });
  });

  it('a leaf for another DNS name does not verify', () => {
    const result = verifyLeaf([{ type: 2, value: 'evil.test' }], 'evil.test');
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/permitted subtree violation/);
  });

  it.each(['140.82.112.6', '127.0.0.1', '2001:db8::1'])(
    'a leaf carrying the IP SAN %s does not verify (excluded subtree)',
    (ip) => {
      // The DNS SAN is a permitted one, so only the IP constraint can refuse it.
      const result = verifyLeaf(
        [
          { type: 2, value: 'api.github.test' },
          { type: 7, ip },
        ],
        'api.github.test',
      );
      expect(result.ok, result.output).toBe(false);
      expect(result.output).toMatch(/excluded subtree violation/);
    },
  );

  it('the CA certificate carries both excluded IP subtrees (IPv4 and IPv6, everything)', () => {
    const ca = new X509Certificate(createInterceptionCa('implementer-ab12c', ['api.github.test']).certificatePem);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: ca.toString(), encoding: 'utf8' });
    expect(text).toMatch(/Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0\s/);
  });
});
