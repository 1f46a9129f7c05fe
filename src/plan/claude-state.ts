import { posix } from 'node:path';
import { AGENT_HOME, CREDENTIAL_PLACEHOLDER, TRANSCRIPT_TARGET } from './agent-env.js';
import { withStatusHooks } from './claude-hooks.js';
import type { BottlePlan } from './schema.js';

/**
 * The Claude Code user state an interactive `claude` needs to open straight on
 * its prompt in a fresh bottle. Without it Claude Code runs its onboarding
 * (which calls api.anthropic.com whatever ANTHROPIC_BASE_URL says and exits
 * when it cannot), asks to trust the working folder, and for an API-key route
 * asks whether to use the key with "No" preselected.
 *
 * Pure: the effects read the files (the host's own Claude Code files, what the
 * image or a restored transcript already holds) and write the result.
 */

/** Claude Code's global config file (`~/.claude.json`: it is outside `~/.claude`, so no transcript carries it). */
export const CLAUDE_GLOBAL_CONFIG_TARGET = posix.join(AGENT_HOME, '.claude.json');
/** Claude Code's user settings, inside `~/.claude`: a resumed bottle's restored transcript may already hold one. */
export const CLAUDE_USER_SETTINGS_TARGET = posix.join(TRANSCRIPT_TARGET, 'settings.json');

/** Claude Code remembers a custom API key the user approved by the key's last characters, never the whole key. */
const REMEMBERED_KEY_CHARS = 20;

export function rememberedKeySuffix(key: string): string {
  return key.trim().slice(-REMEMBERED_KEY_CHARS);
}

type JsonObject = Record<string, unknown>;

const isBoolean = (value: unknown): boolean => typeof value === 'boolean';
const isThemeName = (value: unknown): boolean => typeof value === 'string' && /^[a-z][a-z0-9-]{0,31}$/.test(value);
const isEditorMode = (value: unknown): boolean => value === 'normal' || value === 'vim';
const isLanguageName = (value: unknown): boolean =>
  typeof value === 'string' && /^[\p{L}][\p{L} ()-]{0,39}$/u.test(value);

/**
 * The user's preferences a bottle may share: how Claude Code looks and which
 * language it answers in. Nothing else is read from the user's files: not
 * tokens or accounts, not project history, not hooks, commands, MCP servers,
 * permissions or env (those run things or hold secrets). A value of an
 * unexpected shape is dropped rather than passed on.
 */
const SHAREABLE_PREFERENCES: Readonly<Record<string, (value: unknown) => boolean>> = {
  theme: isThemeName,
  editorMode: isEditorMode,
  language: isLanguageName,
  verbose: isBoolean,
  showMessageTimestamps: isBoolean,
  showTurnDuration: isBoolean,
  showExpandedTodos: isBoolean,
  spinnerTipsEnabled: isBoolean,
  prefersReducedMotion: isBoolean,
  syntaxHighlightingDisabled: isBoolean,
  autoScrollEnabled: isBoolean,
  terminalProgressBarEnabled: isBoolean,
};

export function shareablePreferences(userFile: unknown): JsonObject {
  if (!isObject(userFile)) return {};
  const shared: JsonObject = {};
  for (const [key, accepts] of Object.entries(SHAREABLE_PREFERENCES)) {
    if (Object.hasOwn(userFile, key) && accepts(userFile[key])) shared[key] = userFile[key];
  }
  return shared;
}

export interface ClaudeStateInput {
  plan: Pick<BottlePlan, 'cwd' | 'credentials'>;
  /** The user's own `~/.claude.json` on the host, parsed (undefined when absent or unreadable). */
  userGlobalConfig?: unknown;
  /** The user's own `~/.claude/settings.json` on the host, parsed. */
  userSettings?: unknown;
  /** The text of `~/.claude.json` the agent image already ships, if any. */
  existingGlobalConfig?: string;
  /** The text of `~/.claude/settings.json` a restored transcript puts back (or else the image ships), if any. */
  existingSettings?: string;
}

export { BOTTLE_STATUS_PATH } from './claude-hooks.js';

export interface ClaudeStateFiles {
  /** The agent's `~/.claude.json`. */
  globalConfig: string;
  /** The agent's `~/.claude/settings.json`, or undefined to leave that file as it is (or absent). */
  settings?: string;
}

/**
 * What the bottle's state already says wins over what the user's preferences
 * add; the three answers that keep the dialogs away are always set. An
 * existing file that is not a JSON object is left alone where that is safe
 * (settings) and replaced where the session cannot open without it (config).
 */
export function claudeStateFiles(input: ClaudeStateInput): ClaudeStateFiles {
  const existingConfig = parseObject(input.existingGlobalConfig) ?? {};
  const config: JsonObject = { ...shareablePreferences(input.userGlobalConfig), ...existingConfig };
  config.hasCompletedOnboarding = true;
  config.projects = trustFolder(existingConfig.projects, folderKey(input.plan.cwd));
  const anthropic = input.plan.credentials.find((route) => route.role === 'anthropic-base-url');
  if (anthropic?.auth === 'api-key') {
    config.customApiKeyResponses = approveKey(
      existingConfig.customApiKeyResponses,
      rememberedKeySuffix(CREDENTIAL_PLACEHOLDER),
    );
  }

  const preferences = shareablePreferences(input.userSettings);
  let settings: string | undefined;
  if (input.existingSettings === undefined) {
    settings = json(withStatusHooks(preferences));
  } else {
    // A file that is not a JSON object is left alone: the bottle then has no status hooks.
    const existing = parseObject(input.existingSettings);
    if (existing) {
      const missing = Object.keys(preferences).filter((key) => !Object.hasOwn(existing, key));
      const merged = withStatusHooks({ ...existing, ...pick(preferences, missing) });
      if (JSON.stringify(merged) !== JSON.stringify(existing)) settings = json(merged);
    }
  }
  return { globalConfig: json(config), ...(settings === undefined ? {} : { settings }) };
}

/** Claude Code keys a folder by its normalised absolute path, without a trailing slash. */
function folderKey(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function trustFolder(projects: unknown, folder: string): JsonObject {
  const all: JsonObject = isObject(projects) ? { ...projects } : {};
  const entry = isObject(all[folder]) ? all[folder] : {};
  all[folder] = { ...entry, hasTrustDialogAccepted: true };
  return all;
}

function approveKey(responses: unknown, suffix: string): JsonObject {
  const current: JsonObject = isObject(responses) ? responses : {};
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((v) => typeof v === 'string') : [];
  const approved = strings(current.approved);
  return {
    ...current,
    approved: approved.includes(suffix) ? approved : [...approved, suffix],
    // An earlier "No" to the same key must not linger next to the approval.
    rejected: strings(current.rejected).filter((key) => key !== suffix),
  };
}

function parseObject(text: string | undefined): JsonObject | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function pick(source: JsonObject, keys: string[]): JsonObject {
  return Object.fromEntries(keys.map((key) => [key, source[key]]));
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
