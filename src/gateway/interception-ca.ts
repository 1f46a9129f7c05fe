import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import forge from 'node-forge';

/**
 * The certificate authority the gateway uses to terminate TLS for hosts that
 * have a credential route, so a secret can be injected into requests an agent
 * sends over HTTPS (`curl https://api.github.com/...` through HTTPS_PROXY)
 * without the agent ever holding it, and for every inspected allowlisted host
 * (egress-entries.ts), so what leaves is read and method and path rules hold.
 *
 * It is made fresh in memory each time a gateway starts: its private key never
 * leaves the gateway process, and its certificate is only good for one bottle
 * run. The agent is given the certificate (public) to trust; the gateway
 * prints it in its ready line for the launcher to hand over.
 *
 * Only route hosts and inspected entries are ever intercepted: every other
 * tunnel stays end to end. The CA itself is name-constrained: DNS names only
 * those hosts (and names below them: a `*.example.com` entry is the subtree
 * `example.com`), and every IPv4 and IPv6 address excluded, because a
 * constraint on DNS names alone says nothing about IP addresses and a leaf
 * for an IP SAN would otherwise verify. So even a gateway that misbehaved
 * could not use the agent's trust in it for anything else.
 */
export interface InterceptionCa {
  /** PEM certificate the agent must trust. */
  certificatePem: string;
  /** A TLS context presenting a certificate for `host` (a name or below one), signed by this CA (cached per host). */
  contextFor(host: string): SecureContext;
}

const CA_VALIDITY_DAYS = 30;
const LEAF_VALIDITY_DAYS = 7;
const MAX_CACHED_LEAVES = 256;

export function createInterceptionCa(
  identity: string,
  hosts: readonly string[],
  now: Date = new Date(),
): InterceptionCa {
  const { certificate: caCert, privateKey: caPrivateKey } = createCaCertificate(identity, hosts, now);

  // One key for every leaf: the CA, not the leaf key, is what binds a host.
  const leafKeys = rsaKeyPair();
  const contexts = new Map<string, SecureContext>();

  return {
    certificatePem: forge.pki.certificateToPem(caCert),
    contextFor(host: string): SecureContext {
      if (!hosts.some((name) => host === name || host.endsWith(`.${name}`)))
        throw new Error(`the interception CA is not valid for ${host}`);
      const cached = contexts.get(host);
      if (cached) return cached;
      const leaf = forge.pki.createCertificate();
      leaf.publicKey = leafKeys.publicKey;
      leaf.serialNumber = serialNumber();
      setValidity(leaf, now, LEAF_VALIDITY_DAYS);
      leaf.setSubject([{ name: 'commonName', value: host }]);
      leaf.setIssuer(caCert.subject.attributes);
      leaf.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: host }] },
      ]);
      leaf.sign(caPrivateKey, forge.md.sha256.create());
      const context = createSecureContext({
        key: leafKeys.privateKeyPem,
        cert: forge.pki.certificateToPem(leaf),
        minVersion: 'TLSv1.2',
      });
      // Names under a wildcard are unbounded: the oldest leaf is dropped (and re-signed if asked again).
      if (contexts.size >= MAX_CACHED_LEAVES) contexts.delete(contexts.keys().next().value!);
      contexts.set(host, context);
      return context;
    },
  };
}

/**
 * The CA certificate and its key. Only createInterceptionCa keeps the key;
 * tests call this directly to sign leaves the gateway itself never would.
 */
export function createCaCertificate(
  identity: string,
  hosts: readonly string[],
  now: Date,
): { certificate: forge.pki.Certificate; privateKey: forge.pki.rsa.PrivateKey } {
  if (hosts.length === 0) throw new Error('an interception CA needs at least one host to be valid for');
  const caKeys = rsaKeyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKeys.publicKey;
  caCert.serialNumber = serialNumber();
  setValidity(caCert, now, CA_VALIDITY_DAYS);
  const caName = [
    { name: 'commonName', value: `claude-bottle gateway CA ${identity}` },
    { name: 'organizationName', value: 'claude-bottle' },
  ];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true, pathLenConstraint: 0 },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { id: NAME_CONSTRAINTS_OID, critical: true, value: nameConstraints(hosts) },
  ]);
  caCert.sign(caKeys.privateKey, forge.md.sha256.create());
  return { certificate: caCert, privateKey: caKeys.privateKey };
}

const NAME_CONSTRAINTS_OID = '2.5.29.30';

/**
 * DER of a NameConstraints extension (RFC 5280 4.2.1.10): permitted DNS names
 * exactly these hosts (and, by the RFC's rule, names below them); excluded
 * every IP address (iPAddress subtrees 0.0.0.0/0 and ::/0, each an address
 * followed by its mask). forge has no builder for it. TLS clients (OpenSSL,
 * BoringSSL, Go) enforce it on the root.
 */
function nameConstraints(hosts: readonly string[]): string {
  const { asn1 } = forge;
  const subtree = (tag: number, value: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, false, value),
    ]);
  const permitted = hosts.map((host) => subtree(GENERAL_NAME_DNS, host));
  const everyIPv4 = '\0'.repeat(2 * 4);
  const everyIPv6 = '\0'.repeat(2 * 16);
  const excluded = [subtree(GENERAL_NAME_IP, everyIPv4), subtree(GENERAL_NAME_IP, everyIPv6)];
  const constraints = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, PERMITTED_SUBTREES, true, permitted),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, EXCLUDED_SUBTREES, true, excluded),
  ]);
  return asn1.toDer(constraints).getBytes();
}

const PERMITTED_SUBTREES = 0;
const EXCLUDED_SUBTREES = 1;
const GENERAL_NAME_DNS = 2;
const GENERAL_NAME_IP = 7;

/** Keys come from Node's native generator (forge's pure-JS one takes seconds). */
function rsaKeyPair(): {
  publicKey: forge.pki.rsa.PublicKey;
  privateKey: forge.pki.rsa.PrivateKey;
  privateKeyPem: string;
} {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    privateKeyPem: privateKey,
  };
}

function serialNumber(): string {
  // Positive (high bit clear) and unique per certificate.
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString('hex');
}

function setValidity(cert: forge.pki.Certificate, now: Date, days: number): void {
  // A little slack backwards for clocks that disagree between gateway and agent.
  cert.validity.notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now.getTime() + days * 24 * 60 * 60 * 1000);
}
