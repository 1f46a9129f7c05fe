import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UsageError } from '../shared/errors.js';

/** The worker's setting: a PEM file of extra roots its gateways trust upstream, next to the system's. */
export const UPSTREAM_CA_ENV = 'CLAUDE_BOTTLE_UPSTREAM_CA';

/** Extra upstream roots, checked: every block in the file is a certificate authority Node can parse. */
export interface UpstreamCa {
  file: string;
  pem: string;
  /** One line per root, for the worker's log: subject and SHA-256 fingerprint. */
  roots: string[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** Reads the setting, or nothing when it is unset; a file that is not a bundle of CA certificates is refused. */
export function readUpstreamCa(env: NodeJS.ProcessEnv): UpstreamCa | undefined {
  const file = env[UPSTREAM_CA_ENV];
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${UPSTREAM_CA_ENV}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new UsageError(`${UPSTREAM_CA_ENV}: ${file} holds no PEM certificate`);
  const roots = blocks.map(([block, kind]) => {
    if (kind !== 'CERTIFICATE') throw new UsageError(`${UPSTREAM_CA_ENV}: ${file} holds a ${kind}, not a certificate`);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      throw new UsageError(`${UPSTREAM_CA_ENV}: ${file} holds a certificate that does not parse`);
    }
    if (!cert.ca) throw new UsageError(`${UPSTREAM_CA_ENV}: ${file}: ${oneLine(cert.subject)} is not a CA certificate`);
    return `${oneLine(cert.subject)} (sha256 ${cert.fingerprint256})`;
  });
  return { file, pem: blocks.map(([block]) => block).join('\n') + '\n', roots };
}

function oneLine(subject: string): string {
  return subject.split('\n').join(', ');
}
