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
async function readOptionalJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The user's Claude Code files, parsed (undefined where absent or unreadable): what preferences are taken from. */
export async function readUserClaudeFiles(files = userClaudeFiles()): Promise<{ global: unknown; settings: unknown }> {
  const [global, settings] = await Promise.all([
    readOptionalJson(files.globalConfig),
    readOptionalJson(files.settings),
  ]);
  return { global, settings };
}
