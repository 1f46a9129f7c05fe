import forge from 'node-forge';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readUpstreamCa, UPSTREAM_CA_ENV } from '../../../src/effects/upstream-ca.js';
import { createCaCertificate } from '../../../src/gateway/interception-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'cb-upstream-ca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const caPem = () => forge.pki.certificateToPem(createCaCertificate('t', ['stand-in.test'], new Date()).certificate);

function leafPem(): string {
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date();
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: 'leaf.test' }]);
  cert.setIssuer([{ name: 'commonName', value: 'leaf.test' }]);
  cert.setExtensions([{ name: 'basicConstraints', cA: false }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

const read = (path: string) => readUpstreamCa({ [UPSTREAM_CA_ENV]: path });

describe('the worker’s extra upstream roots (CLAUDE_BOTTLE_UPSTREAM_CA)', () => {
  it('are none when the setting is unset or empty', () => {
    expect(readUpstreamCa({})).toBeUndefined();
    expect(readUpstreamCa({ [UPSTREAM_CA_ENV]: '' })).toBeUndefined();
  });

  it('keep every certificate of a bundle and name each by subject and fingerprint', () => {
    const [a, b] = [caPem(), caPem()];
    const ca = read(file('bundle.pem', `# comment\n${a}\n${b}`))!;
    expect(ca.roots).toHaveLength(2);
    expect(ca.roots[0]).toMatch(/^CN=claude-bottle gateway CA t, O=claude-bottle \(sha256 [0-9A-F:]{95}\)$/);
    expect(ca.pem).toContain(a.trim());
    expect(ca.pem).toContain(b.trim());
    expect(ca.pem).not.toContain('# comment');
  });

  it('refuse, in one line each, a missing file, a file with no certificate, a key, and a leaf certificate', () => {
    expect(() => read(join(dir, 'absent.pem'))).toThrow(
      /^CLAUDE_BOTTLE_UPSTREAM_CA: cannot read .*absent\.pem: ENOENT$/,
    );
    expect(() => read(file('empty.pem', 'nothing here\n'))).toThrow(/holds no PEM certificate$/);
    const key = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    expect(() => read(file('key.pem', key))).toThrow(/holds a PRIVATE KEY, not a certificate$/);
    expect(() => read(file('leaf.pem', leafPem()))).toThrow(/CN=leaf\.test is not a CA certificate$/);
    const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(() => read(file('broken.pem', broken))).toThrow(/holds a certificate that does not parse$/);
  });
});
