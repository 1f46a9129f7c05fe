import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { BottlePlan } from '../plan/schema.js';
import { sealSecrets, type SealedSecrets } from '../shared/sealed-secrets.js';
import { readHostPublicKey } from '../engine/host-keys.js';
import { checkHostKey, knownHostsPath } from './known-hosts.js';
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

export async function resolveSecrets(
  plan: BottlePlan,
  sources: RouteSecretSource[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Record<string, string>> {
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
  for (const [i, entry] of plan.ssh.entries()) {
    secrets[sshKeyId(i)] = await readSshPrivateKey(entry.Host, entry.IdentityFile);
  }
  return secrets;
}

/**
 * Refuses a launch with secrets whose host now publishes a key other than the pinned one, before the
 * launch is confirmed or anything is sent; sealForHost checks again at the moment it seals.
 */
export async function checkHostKeyBeforeLaunch(
  redis: Redis,
  plan: BottlePlan,
  secrets: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (Object.keys(secrets).length === 0) return;
  const publicKey = await readHostPublicKey(redis, plan.host);
  if (publicKey) checkHostKey(knownHostsPath(env), plan.host, publicKey);
}

/**
 * The launch's secrets sealed for the plan's host; undefined when the bottle needs none. The key is
 * read only to seal, and checked against the one pinned in known-hosts first: a bottle without
 * secrets risks nothing on a changed key, so neither reads nor pins one.
 */
export async function sealForHost(
  redis: Redis,
  plan: BottlePlan,
  secrets: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SealedSecrets | undefined> {
  if (Object.keys(secrets).length === 0) return undefined;
  const publicKey = await readHostPublicKey(redis, plan.host);
  if (!publicKey) {
    throw new RuntimeFailure(
      `host ${plan.host} has published no key to seal the credential secrets to (no worker of it has started); ` +
        `run \`bottle worker --host ${plan.host}\` on that host once, then retry`,
    );
  }
  checkHostKey(knownHostsPath(env), plan.host, publicKey);
  return sealSecrets(secrets, { identity: plan.identity, host: plan.host, publicKey });
}

/**
 * An ssh entry's private key, for the gateway's ssh-agent, checked as the
 * gateway will check it (src/shared/ssh-key.ts), so a key it could not use is
 * refused here, before anything is created. Never quotes the file's content.
 */
export async function readSshPrivateKey(host: string, path: string): Promise<string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new RuntimeFailure(`ssh entry ${host}: cannot read IdentityFile ${path} (${code})`);
  }
  // ssh2 is loaded only by starts whose bottle holds ssh keys.
  const { checkSshPrivateKey, sshKeyProblemText, sshKeyRemedy } = await import('../shared/ssh-key.js');
  const { problem } = checkSshPrivateKey(text);
  if (problem) {
    throw new UsageError(
      `ssh entry ${host}: IdentityFile ${path} ${sshKeyProblemText(problem)}; ${sshKeyRemedy(problem, path)}`,
    );
  }
  return text;
}
