import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claudeStateEntries } from '../../../src/effects/docker/provision.js';
import { userClaudeFiles } from '../../../src/shared/claude-files.js';
import { CREDENTIAL_PLACEHOLDER } from '../../../src/plan/agent-env.js';
import {
  CLAUDE_GLOBAL_CONFIG_TARGET,
  CLAUDE_USER_SETTINGS_TARGET,
  claudeStateFiles,
  rememberedKeySuffix,
  shareablePreferences,
} from '../../../src/plan/claude-state.js';
import type { BottlePlan } from '../../../src/plan/schema.js';
import { REPORTED_HOOK_EVENTS, withStatusHooks } from '../../../src/plan/claude-hooks.js';

type Credentials = BottlePlan['credentials'];
const oauthRoute = [
  { role: 'anthropic-base-url', upstream: 'http://llm.test', auth: 'oauth' },
] as unknown as Credentials;
const apiKeyRoute = [
  { role: 'anthropic-base-url', upstream: 'http://llm.test', auth: 'api-key' },
] as unknown as Credentials;

const parse = (text: string | undefined) => JSON.parse(text ?? 'null') as Record<string, unknown>;
/** The settings without the status hooks every bottle gets (pinned in claude-hooks.test.ts). */
const withoutHooks = (text: string | undefined) => {
  const { hooks, ...rest } = parse(text);
  expect(Object.keys(hooks as object).sort()).toEqual([...REPORTED_HOOK_EVENTS].sort());
  return rest;
};

describe('claudeStateFiles: a fresh bottle opens on the prompt', () => {
  it('completes onboarding and trusts the working folder, and approves no key on an oauth route', () => {
    const files = claudeStateFiles({ plan: { cwd: '/work/project/', credentials: oauthRoute } });
    const config = parse(files.globalConfig);
    expect(config).toEqual({
      hasCompletedOnboarding: true,
      projects: { '/work/project': { hasTrustDialogAccepted: true } },
    });
    // Only the status hooks, which report to the gateway when Claude Code waits for the operator.
    expect(withoutHooks(files.settings)).toEqual({});
  });

  it('approves the placeholder API key the way Claude Code remembers it: by its last 20 characters', () => {
    expect(rememberedKeySuffix(CREDENTIAL_PLACEHOLDER)).toBe(CREDENTIAL_PLACEHOLDER.slice(-20));
    expect(rememberedKeySuffix(` ${'k'.repeat(30)}abc \n`)).toBe(`${'k'.repeat(17)}abc`);
    const config = parse(claudeStateFiles({ plan: { cwd: '/w', credentials: apiKeyRoute } }).globalConfig);
    expect(config.customApiKeyResponses).toEqual({ approved: [CREDENTIAL_PLACEHOLDER.slice(-20)], rejected: [] });
    // The placeholder itself is not secret, but only its remembered suffix is needed.
    expect(JSON.stringify(config)).not.toContain(CREDENTIAL_PLACEHOLDER);
  });

  it('never carries the real secret anywhere: the files depend on the placeholder only', () => {
    const files = claudeStateFiles({ plan: { cwd: '/w', credentials: apiKeyRoute } });
    expect(files.globalConfig).not.toMatch(/sk-ant|token/i);
  });
});

describe('the user own preferences', () => {
  const userGlobalConfig = {
    theme: 'light-daltonized',
    editorMode: 'vim',
    verbose: true,
    oauthAccount: { emailAddress: 'me@example.test', accountUuid: 'u-1' },
    primaryApiKey: 'sk-ant-real-secret',
    customApiKeyResponses: { approved: ['user-approved-key-tail'], rejected: [] },
    projects: { '/home/me/secret-project': { history: [{ display: 'private prompt' }], hasTrustDialogAccepted: true } },
    mcpServers: { evil: { command: 'curl' } },
    userID: 'abc',
    hasCompletedOnboarding: false,
  };

  it('takes display preferences only: no account, key, history, MCP server or identity', () => {
    expect(shareablePreferences(userGlobalConfig)).toEqual({
      theme: 'light-daltonized',
      editorMode: 'vim',
      verbose: true,
    });
    const text = claudeStateFiles({ plan: { cwd: '/w', credentials: oauthRoute }, userGlobalConfig }).globalConfig;
    for (const leak of [
      'oauthAccount',
      'me@example.test',
      'sk-ant-real-secret',
      'user-approved-key-tail',
      'secret-project',
      'private prompt',
      'mcpServers',
      'userID',
    ]) {
      expect(text).not.toContain(leak);
    }
    expect(parse(text)).toMatchObject({
      theme: 'light-daltonized',
      editorMode: 'vim',
      verbose: true,
      hasCompletedOnboarding: true,
    });
  });

  it('drops values of an unexpected shape', () => {
    expect(
      shareablePreferences({ theme: 'x'.repeat(200), editorMode: 'emacs', verbose: 'yes', language: '$(rm -rf /)' }),
    ).toEqual({});
    expect(shareablePreferences({ theme: 'custom:mine' })).toEqual({});
    expect(shareablePreferences({ language: 'français', spinnerTipsEnabled: false })).toEqual({
      language: 'français',
      spinnerTipsEnabled: false,
    });
    expect(shareablePreferences(['theme'])).toEqual({});
    expect(shareablePreferences(undefined)).toEqual({});
  });

  it('writes ~/.claude/settings.json with shareable settings only: hooks, env, permissions stay home', () => {
    const userSettings = {
      theme: 'dark',
      prefersReducedMotion: true,
      env: { ANTHROPIC_API_KEY: 'sk-ant-settings-secret' },
      apiKeyHelper: '/usr/local/bin/get-key',
      hooks: { PreToolUse: [] },
      permissions: { allow: ['Bash(*)'] },
      statusLine: { type: 'command', command: 'cat ~/.ssh/id_rsa' },
      model: 'opus',
    };
    const files = claudeStateFiles({ plan: { cwd: '/w', credentials: oauthRoute }, userSettings });
    expect(withoutHooks(files.settings)).toEqual({ theme: 'dark', prefersReducedMotion: true });
    expect(
      withoutHooks(
        claudeStateFiles({ plan: { cwd: '/w', credentials: oauthRoute }, userSettings: { hooks: {} } }).settings,
      ),
    ).toEqual({});
  });
});

describe('state the bottle already has is merged, not replaced', () => {
  it('keeps what the image ships in ~/.claude.json and adds the trust and the approval to it', () => {
    const existingGlobalConfig = JSON.stringify({
      theme: 'dark',
      numStartups: 7,
      projects: { '/other': { hasTrustDialogAccepted: false }, '/w': { allowedTools: ['Read'] } },
      customApiKeyResponses: { approved: ['shipped-approved'], rejected: [CREDENTIAL_PLACEHOLDER.slice(-20), 'other'] },
    });
    const config = parse(
      claudeStateFiles({
        plan: { cwd: '/w', credentials: apiKeyRoute },
        userGlobalConfig: { theme: 'light', verbose: true },
        existingGlobalConfig,
      }).globalConfig,
    );
    expect(config).toEqual({
      theme: 'dark',
      verbose: true,
      numStartups: 7,
      hasCompletedOnboarding: true,
      projects: {
        '/other': { hasTrustDialogAccepted: false },
        '/w': { allowedTools: ['Read'], hasTrustDialogAccepted: true },
      },
      customApiKeyResponses: { approved: ['shipped-approved', CREDENTIAL_PLACEHOLDER.slice(-20)], rejected: ['other'] },
    });
  });

  it('does not approve the key twice', () => {
    const suffix = CREDENTIAL_PLACEHOLDER.slice(-20);
    const existingGlobalConfig = JSON.stringify({ customApiKeyResponses: { approved: [suffix] } });
    const config = parse(
      claudeStateFiles({ plan: { cwd: '/w', credentials: apiKeyRoute }, existingGlobalConfig }).globalConfig,
    );
    expect(config.customApiKeyResponses).toEqual({ approved: [suffix], rejected: [] });
  });

  it("a restored transcript's settings win; only missing preferences are added, if any", () => {
    const plan = { cwd: '/w', credentials: oauthRoute };
    const existingSettings = JSON.stringify({ theme: 'light', permissions: { allow: ['Read'] } });
    const userSettings = { theme: 'dark', verbose: true };
    expect(withoutHooks(claudeStateFiles({ plan, userSettings, existingSettings }).settings)).toEqual({
      theme: 'light',
      permissions: { allow: ['Read'] },
      verbose: true,
    });
    // A restored file that already has everything (a resumed bottle) is left as it is.
    const complete = JSON.stringify(withStatusHooks(JSON.parse(existingSettings) as Record<string, unknown>));
    expect(claudeStateFiles({ plan, userSettings: { theme: 'dark' }, existingSettings: complete }).settings).toBe(
      undefined,
    );
    expect(claudeStateFiles({ plan, existingSettings: complete }).settings).toBeUndefined();
  });

  it('leaves an existing settings file it cannot parse alone', () => {
    const files = claudeStateFiles({
      plan: { cwd: '/w', credentials: oauthRoute },
      userSettings: { theme: 'dark' },
      existingSettings: '{ not json',
    });
    expect(files.settings).toBeUndefined();
  });

  it('replaces a shipped ~/.claude.json that is not a JSON object: the session cannot open without its answers', () => {
    const config = parse(
      claudeStateFiles({ plan: { cwd: '/w', credentials: oauthRoute }, existingGlobalConfig: '[1,2]' }).globalConfig,
    );
    expect(config.hasCompletedOnboarding).toBe(true);
  });
});

describe('claudeStateEntries reads the host files', () => {
  it("honours CLAUDE_CONFIG_DIR, merges the restored transcript's settings, owns the files as the agent", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-claude-state-'));
    try {
      const configDir = join(dir, 'config');
      const transcript = join(dir, 'transcript');
      mkdirSync(configDir);
      mkdirSync(transcript);
      writeFileSync(
        join(configDir, '.claude.json'),
        JSON.stringify({ theme: 'light', oauthAccount: { accountUuid: 'secret-uuid' } }),
      );
      writeFileSync(
        join(configDir, 'settings.json'),
        JSON.stringify({ spinnerTipsEnabled: false, env: { TOKEN: 'secret-env' } }),
      );
      writeFileSync(join(transcript, 'settings.json'), JSON.stringify({ verbose: true }));
      const user = userClaudeFiles({ CLAUDE_CONFIG_DIR: configDir }, '/nonexistent-home');
      expect(user).toEqual({
        globalConfig: join(configDir, '.claude.json'),
        settings: join(configDir, 'settings.json'),
      });
      expect(userClaudeFiles({}, '/home/me')).toEqual({
        globalConfig: '/home/me/.claude.json',
        settings: '/home/me/.claude/settings.json',
      });

      const entries = await claudeStateEntries(
        { cwd: '/w', credentials: oauthRoute },
        { restoredTranscript: transcript },
        user,
      );
      const files = Object.fromEntries(entries.flatMap((e) => (e.type === 'file' ? [[e.path, e]] : [])));
      expect(Object.keys(files).sort()).toEqual([CLAUDE_GLOBAL_CONFIG_TARGET, CLAUDE_USER_SETTINGS_TARGET]);
      for (const file of Object.values(files)) expect(file).toMatchObject({ uid: 1000, gid: 1000, mode: 0o600 });
      expect(parse(String(files[CLAUDE_GLOBAL_CONFIG_TARGET].content))).toMatchObject({
        theme: 'light',
        hasCompletedOnboarding: true,
      });
      expect(withoutHooks(String(files[CLAUDE_USER_SETTINGS_TARGET].content))).toEqual({
        verbose: true,
        spinnerTipsEnabled: false,
      });
      expect(JSON.stringify(entries)).not.toMatch(/secret-uuid|secret-env/);

      // No user files at all (a host without Claude Code): the answers alone.
      const bare = await claudeStateEntries(
        { cwd: '/w', credentials: oauthRoute },
        {},
        userClaudeFiles({}, join(dir, 'none')),
      );
      expect(bare.filter((e) => e.type === 'file').map((e) => e.path)).toEqual([
        CLAUDE_GLOBAL_CONFIG_TARGET,
        CLAUDE_USER_SETTINGS_TARGET,
      ]);

      // Preferences the CLI read on its machine (in the plan) win: this machine's files are not read.
      const planned = await claudeStateEntries(
        { cwd: '/w', credentials: oauthRoute, claude_preferences: { global: { theme: 'dark' }, settings: {} } },
        {},
        user,
      );
      const config = planned.find((e) => e.path === CLAUDE_GLOBAL_CONFIG_TARGET);
      expect(parse(String(config?.type === 'file' ? config.content : ''))).toMatchObject({ theme: 'dark' });
      const settings = planned.find((e) => e.path === CLAUDE_USER_SETTINGS_TARGET);
      expect(withoutHooks(String(settings?.type === 'file' ? settings.content : ''))).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
