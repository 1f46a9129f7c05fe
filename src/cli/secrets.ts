import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { BottlePlan } from '../plan/schema.js';
import { RuntimeFailure } from '../shared/errors.js';
import { routeId } from '../shared/names.js';

/**
 * Secrets are read on the host at start, before anything is created, and
 * handed to the worker through a 0600 file in the bottle's state folder that
 * the gateway effect copies into the gateway container and then deletes.
 * They never enter the event log, the plan, the agent, or any output.
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
      if (!value) throw new RuntimeFailure(`credential route ${what}: environment variable ${src.token_env} is not set; export it or change token_env in the manifest`);
    } else if (src.token_file) {
      try {
        value = readFileSync(src.token_file, 'utf8').trim();
      } catch (err) {
        throw new RuntimeFailure(`credential route ${what}: cannot read token_file ${src.token_file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (!value) throw new RuntimeFailure(`credential route ${what}: token_file ${src.token_file} is empty`);
    } else if (src.token_command) {
      try {
        value = execFileSync('sh', ['-c', src.token_command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 }).trim();
      } catch (err) {
        throw new RuntimeFailure(`credential route ${what}: token_command failed (exit ${(err as { status?: number }).status ?? '?'})`);
      }
      if (!value) throw new RuntimeFailure(`credential route ${what}: token_command printed nothing`);
    } else {
      throw new RuntimeFailure(`credential route ${what}: no token_env, token_file or token_command`);
    }
    secrets[routeId(i)] = value;
  });
  return secrets;
}
