import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the user's own Claude Code keeps its files on this machine (CLAUDE_CONFIG_DIR moves both, as it does). */
export function userClaudeFiles(
  env: NodeJS.ProcessEnv = process.env,
  home = homedir(),
): { globalConfig: string; settings: string } {
  const configDir = env.CLAUDE_CONFIG_DIR;
  return {
    globalConfig: configDir ? join(configDir, '.claude.json') : join(home, '.claude.json'),
    settings: join(configDir || join(home, '.claude'), 'settings.json'),
  };
}

/** A JSON file's value, or undefined when it is absent, unreadable or not JSON: preferences are optional. */
export async function readOptionalJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
