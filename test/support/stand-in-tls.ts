import forge from 'node-forge';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCaCertificate } from '../../src/gateway/interception-ca.js';

/** What an HTTPS stand-in serves (key, cert) and what a worker is told to trust (the CA, as PEM and as a file). */
export interface StandInTls {
  key: string;
  cert: string;
  caPem: string;
  caFile: string;
}

/**
 * A leaf for every one of `names`, signed by a throwaway CA (name-constrained to them) whose
 * certificate is written to `dir/ca.pem`, for CLAUDE_BOTTLE_UPSTREAM_CA.
 */
export function standInTls(names: readonly string[], dir: string, label = 'stand-in'): StandInTls {
  const ca = createCaCertificate(label, names, new Date());
  const caPem = forge.pki.certificateToPem(ca.certificate);
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = keys.publicKey;
  leaf.serialNumber = '02';
  leaf.validity.notBefore = new Date(Date.now() - 60_000);
  leaf.validity.notAfter = new Date(Date.now() + 86_400_000);
  leaf.setSubject([{ name: 'commonName', value: names[0]! }]);
  leaf.setIssuer(ca.certificate.subject.attributes);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
  ]);
  leaf.sign(ca.privateKey, forge.md.sha256.create());
  return { key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(leaf), caPem, caFile };
}
