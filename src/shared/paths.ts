import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { IDENTITY_PATTERN } from './identity.js';

/** `$CLAUDE_BOTTLE_HOME`, default `~/.claude-bottle`. */
export function bottleHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.CLAUDE_BOTTLE_HOME;
  return configured ? resolve(expandHome(configured)) : join(homedir(), '.claude-bottle');
}

export function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return p;
}

/** Per-bottle state folder. The identity is validated already; this re-check guards against path injection. */
export function stateDir(identity: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!IDENTITY_PATTERN.test(identity))
    throw new Error(`refusing to build a path from unvalidated identity ${JSON.stringify(identity)}`);
  return join(bottleHome(env), 'state', identity);
}

export const statePaths = (identity: string, env: NodeJS.ProcessEnv = process.env) => {
  const dir = stateDir(identity, env);
  return {
    dir,
    metadata: join(dir, 'metadata.json'),
    dockerfile: join(dir, 'Dockerfile'),
    transcript: join(dir, 'transcript'),
    preserveMarker: join(dir, '.preserve'),
  };
};
