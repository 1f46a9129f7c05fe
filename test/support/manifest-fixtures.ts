import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A manifest that passes every check, to be broken one field at a time by tests. */
export function validManifestJson(): Record<string, any> {
  return {
    bottles: [
      {
        name: 'dev',
        egress: { allow: ['github.com', '*.githubusercontent.com', 'registry.npmjs.org:443'] },
        cred_proxy: {
          routes: [
            {
              role: 'anthropic-base-url',
              upstream: 'https://api.anthropic.com',
              token_env: 'CLAUDE_BOTTLE_OAUTH_TOKEN',
              auth: 'oauth',
            },
            { host: 'api.github.com', token_env: 'GITHUB_TOKEN', auth: 'bearer' },
          ],
        },
        extra_hosts: { 'mirror.internal.test': 'host-gateway' },
        limits: { memory: '4g', cpus: 2, pids: 1024 },
      },
    ],
    agents: [{ name: 'implementer', bottle: 'dev', command: ['claude'], copy_cwd: false }],
  };
}

export interface ManifestDir {
  dir: string;
  path: string;
  cleanup(): Promise<void>;
}

/**
 * Writes a manifest plus the files it references (prompt, skill, ssh key,
 * Dockerfile) into a fresh temp folder.
 */
export async function writeManifestDir(
  build: (files: { dir: string }) => Record<string, unknown> | string,
  extraFiles: Record<string, string> = {},
): Promise<ManifestDir> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-manifest-'));
  for (const [rel, content] of Object.entries(extraFiles)) {
    const file = join(dir, rel);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, content);
  }
  const json = build({ dir });
  const path = join(dir, 'claude-bottle.json');
  await writeFile(path, typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  return { dir, path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
