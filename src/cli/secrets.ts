import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { BottlePlan } from '../plan/schema.js';
import { sealSecrets, type SealedSecrets } from '../shared/sealed-secrets.js';
import { readHostPublicKey } from '../worker/host-key.js';
import { sshKeyId } from '../plan/ssh-config.js';
import { RuntimeFailure, UsageError } from '../shared/errors.js';
import { routeId } from '../shared/names.js';

/**
 * Secrets are read on the CLI's machine at start, before anything is created,
 * sealed to the public key of the bottle's host, and sent inside the command
 * job; only that host's worker can open them, in memory, to hand them to the
 * gateway. They never enter the event log, the plan, the agent, any output,
 * or any disk. The private keys of the manifest's ssh entries travel the same
 * way, for the gateway's ssh-agent.
 */
export interface RouteSecretSource {
  token_env?: string;
  token_file?: string;
  token_command?: string;
}

export function resolveSecrets(
  plan: BottlePlan,
  sources: RouteSecretSource[],
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const secrets: Record<string, string> = {};
  plan.credentials.forEach((route, i) => {
    const src = sources[i] ?? {};
    const what = route.role ?? route.host ?? `route ${i}`;
    let value: string | undefined;
    if (src.token_env) {
      value = env[src.token_env];
      if (!value)
        throw new RuntimeFailure(
          `credential route ${what}: environment variable ${src.token_env} is not set; ` +
            'export it or change token_env in the manifest',
        );
    } else if (src.token_file) {
      try {
        value = readFileSync(src.token_file, 'utf8').trim();
      } catch (err) {
        throw new RuntimeFailure(
          `credential route ${what}: cannot read token_file ${src.token_file} ` +
            `(${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      if (!value) throw new RuntimeFailure(`credential route ${what}: token_file ${src.token_file} is empty`);
    } else if (src.token_command) {
      try {
        value = execFileSync('sh', ['-c', src.token_command], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 30_000,
        }).trim();
      } catch (err) {
        throw new RuntimeFailure(
          `credential route ${what}: token_command failed (exit ${(err as { status?: number }).status ?? '?'})`,
        );
      }
      if (!value) throw new RuntimeFailure(`credential route ${what}: token_command printed nothing`);
    } else {
      throw new RuntimeFailure(`credential route ${what}: no token_env, token_file or token_command`);
    }
    secrets[routeId(i)] = value;
  });
  plan.ssh.forEach((entry, i) => {
    secrets[sshKeyId(i)] = readSshPrivateKey(entry.Host, entry.IdentityFile);
  });
  return secrets;
}

/** The launch's secrets sealed for the plan's host; undefined when the bottle needs none. */
export async function sealForHost(
  redis: Redis,
  plan: BottlePlan,
  secrets: Record<string, string>,
): Promise<SealedSecrets | undefined> {
  if (Object.keys(secrets).length === 0) return undefined;
  const publicKey = await readHostPublicKey(redis, plan.host);
  if (!publicKey) {
    throw new RuntimeFailure(
      `host ${plan.host} has published no key to seal the credential secrets to (no worker of it has started); ` +
        `run \`bottle worker --host ${plan.host}\` on that host once, then retry`,
    );
  }
  return sealSecrets(secrets, { identity: plan.identity, host: plan.host, publicKey });
}

const OPENSSH_KEY = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/;
const PEM_PRIVATE_KEY = /-----BEGIN ((RSA|EC|DSA|ENCRYPTED) )?PRIVATE KEY-----/;

/**
 * An ssh entry's private key, for the gateway's ssh-agent. Keys with a
 * passphrase are refused: the gateway has no one to ask for it. Never quotes
 * the file's content.
 */
export function readSshPrivateKey(host: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new RuntimeFailure(`ssh entry ${host}: cannot read IdentityFile ${path} (${code})`);
  }
  const encrypted =
    `ssh entry ${host}: IdentityFile ${path} is protected by a passphrase, which the gateway's ssh-agent ` +
    'cannot ask for; name a key without one (e.g. a deploy key) or remove it with ssh-keygen -p';
  const openssh = OPENSSH_KEY.exec(text);
  const notAKey = `ssh entry ${host}: IdentityFile ${path} is not an ssh private key (OpenSSH or PEM format)`;
  if (openssh) {
    const cipher = opensshCipher(openssh[1]);
    if (cipher === null) throw new UsageError(notAKey);
    if (cipher !== 'none') throw new UsageError(encrypted);
    return text;
  }
  const pem = PEM_PRIVATE_KEY.exec(text);
  if (pem) {
    if (pem[2] === 'ENCRYPTED' || /^Proc-Type:\s*4,ENCRYPTED/m.test(text)) throw new UsageError(encrypted);
    return text;
  }
  throw new UsageError(notAKey);
}

/** The cipher named in an OpenSSH private key ("none" when it has no passphrase); null when unreadable. */
function opensshCipher(base64: string): string | null {
  const bytes = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  if (bytes.length < magic.length + 4 || !bytes.subarray(0, magic.length).equals(magic)) return null;
  const length = bytes.readUInt32BE(magic.length);
  const start = magic.length + 4;
  if (start + length > bytes.length) return null;
  return bytes.subarray(start, start + length).toString('latin1');
}
