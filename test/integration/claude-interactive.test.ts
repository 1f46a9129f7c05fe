import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIAL_PLACEHOLDER } from '../../src/plan/agent-env.js';
import { startClaudeFixture, TEST_TOKEN_ENV, type ClaudeFixture } from '../support/claude-fixture.js';
import { startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { bottleCommandLine, TestTerminals, type TerminalRun } from '../support/tmux.js';

/**
 * The real Claude Code, started interactively in a fresh bottle as a user
 * would (`bottle start claude` on a terminal: tmux owns the pty), on a route
 * whose upstream is a local fake Messages API, not api.anthropic.com. The
 * session must open on its prompt with no onboarding, no folder-trust
 * question and no "use this API key?" question; a typed message gets the
 * fake's reply on screen; the fake sees the real key; and nothing goes to
 * api.anthropic.com. The user's own Claude Code display preferences come
 * along, their account and secrets do not.
 */

const terminals = new TestTerminals('cbclaude');
const fixtures: ClaudeFixture[] = [];
let h: BottleHarness;
let work: string;
let userConfigDir: string;

/** Marks that must never reach the bottle, planted in the user's own Claude Code files. */
const USER_SECRET_MARKS = [
  'user-oauth-account-mark',
  'user-primary-api-key-mark',
  'user-settings-env-mark',
  'user-history-mark',
];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cb-claude-tty-'));
  // The user's own Claude Code files on the host (CLAUDE_CONFIG_DIR moves both, as it does for Claude Code itself).
  userConfigDir = join(work, 'user-claude');
  mkdirSync(userConfigDir);
  writeFileSync(
    join(userConfigDir, '.claude.json'),
    JSON.stringify({
      theme: 'light',
      editorMode: 'vim',
      hasCompletedOnboarding: true,
      oauthAccount: { accountUuid: USER_SECRET_MARKS[0], emailAddress: 'user@example.test' },
      primaryApiKey: USER_SECRET_MARKS[1],
      projects: {
        '/home/user/project': { history: [{ display: USER_SECRET_MARKS[3] }], hasTrustDialogAccepted: true },
      },
    }),
  );
  writeFileSync(
    join(userConfigDir, 'settings.json'),
    JSON.stringify({ spinnerTipsEnabled: false, env: { SOME_TOKEN: USER_SECRET_MARKS[2] }, hooks: { Stop: [] } }),
  );
  h = await startHarness({ env: { CLAUDE_CONFIG_DIR: userConfigDir } });
}, 120_000);

afterAll(async () => {
  terminals.close();
  for (const f of fixtures) await f.close();
  await h?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * `bottle start --yes <agent>` (or `resume --yes <identity>`) in a fresh tmux session, from a working folder the
 * agent (uid 1000) can use.
 */
function startInTmux(f: ClaudeFixture, resumeIdentity?: string): TerminalRun {
  const cwd = join(work, `cwd-${randomBytes(3).toString('hex')}`);
  mkdirSync(cwd);
  chownSync(cwd, 1000, 1000);
  const args = resumeIdentity
    ? ['resume', '--yes', resumeIdentity]
    : ['--manifest', f.manifestPath, 'start', '--yes', f.agent];
  const env = { CLAUDE_CONFIG_DIR: userConfigDir, [TEST_TOKEN_ENV]: f.secret };
  return terminals.open(bottleCommandLine(h, args, env), { cwd, name: 'cbclaude' });
}

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 90_000,
  onTimeout: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${onTimeout()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function identityOf(agent: string): Promise<string> {
  return until(`a ${agent} bottle`, async () => (await h.log.listBottles()).find((b) => b.agent === agent)?.identity);
}

/** What Claude Code shows before a session when its state is missing: none may appear. */
const DIALOGS = [
  /Welcome to Claude Code/i,
  /Unable to connect to Anthropic services/i,
  /Accessing workspace/i,
  /trust this folder/i,
  /Detected a custom API key/i,
  /Do you want to use this API key/i,
  /Select login method|Choose the text style/i,
];

/** Claude Code's input box is ready: its banner and the prompt's status line are drawn. */
const readyPrompt = (screen: string) => /Claude Code v\d/.test(screen) && /shift\+tab|\? for shortcuts/.test(screen);

async function openSession(f: ClaudeFixture, resumeIdentity?: string): Promise<{ run: TerminalRun; identity: string }> {
  const run = startInTmux(f, resumeIdentity);
  const identity = resumeIdentity ?? (await identityOf(f.agent));
  await h.waitForEvent(identity, 'agent.started');
  const shown = (screen: string) =>
    readyPrompt(screen) || DIALOGS.some((dialog) => dialog.test(screen)) || run.exited();
  const screen = await until('Claude Code prompt', () => shown(run.screen()) && run.screen(), 120_000).catch(
    async (err) => {
      // A hang before the first screen is the onboarding waiting on an Anthropic host: say which hosts it asked for.
      throw new Error(
        `${(err as Error).message}\negress: ${(await egressHosts(identity)).join(', ')}\n${run.screen()}`,
      );
    },
  );
  for (const dialog of DIALOGS) expect(screen, screen).not.toMatch(dialog);
  expect(readyPrompt(screen), screen).toBe(true);
  return { run, identity };
}

async function talk(f: ClaudeFixture, run: TerminalRun, message = 'say hello to the bottle'): Promise<void> {
  const before = f.fake.requests.length;
  run.type(message);
  run.keys('Enter');
  const answered = () =>
    f.fake.requests.slice(before).some((r) => r.body.includes(message)) && run.screen().includes(f.reply);
  await until('the fake reply on screen', answered, 120_000, run.screen);
  for (const dialog of DIALOGS) expect(run.screen()).not.toMatch(dialog);
}

async function egressHosts(identity: string): Promise<string[]> {
  const events = await h.log.read(identity);
  return events
    .filter((e) => e.type === 'egress.allowed' || e.type === 'egress.denied')
    .map((e) => String((e.data as { host?: string }).host));
}

function messageRequests(f: ClaudeFixture) {
  return f.fake.requests.filter((r) => r.method === 'POST' && r.url.split('?')[0] === '/v1/messages');
}

async function exitSession(run: TerminalRun): Promise<void> {
  run.keys('C-c');
  run.keys('C-c');
  await until('the CLI to exit', () => run.exited(), 60_000, run.screen).catch(() => undefined);
}

describe('interactive claude in a fresh bottle goes straight to the prompt', () => {
  it('api-key route: no dialog, the typed message gets the reply, the fake gets the real key', async () => {
    const f = await startClaudeFixture(h, {
      auth: 'api-key',
      bottle: 'tty-api',
      agents: [{ name: 'tty-api' }],
      reply: 'Straight to the prompt, via the fake.',
    });
    fixtures.push(f);
    const { run, identity } = await openSession(f);
    await talk(f, run);

    expect(messageRequests(f).length).toBeGreaterThan(0);
    for (const r of f.fake.requests) {
      expect(r.headers['x-api-key']).toBe(f.secret);
      expect(r.headers.authorization).toBeUndefined();
      expect(JSON.stringify(r.headers) + r.body).not.toContain(CREDENTIAL_PLACEHOLDER);
    }
    // The route's upstream is the fake: Claude Code asked no Anthropic host for anything (onboarding would have).
    expect((await egressHosts(identity)).filter((host) => host.endsWith('anthropic.com'))).toEqual([]);

    // What was provisioned: the user's display preferences came along, nothing of their account or secrets.
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const { output: config } = await execIn(agent, ['cat', '/home/node/.claude.json'], { user: '1000' });
    const { output: settings } = await execIn(agent, ['cat', '/home/node/.claude/settings.json'], { user: '1000' });
    expect(config).toMatch(/"theme":\s*"light"/);
    expect(config).toMatch(/"editorMode":\s*"vim"/);
    expect(settings).toMatch(/"spinnerTipsEnabled":\s*false/);
    for (const mark of USER_SECRET_MARKS) expect(config + settings).not.toContain(mark);
    expect(config + settings).not.toContain('user@example.test');
    // The host's own hooks stay behind; the only hooks are the bottle's status hooks, all calling bottle-status.
    const hooks = (JSON.parse(settings) as { hooks?: Record<string, { hooks: { command: string }[] }[]> }).hooks ?? {};
    const commands = Object.values(hooks).flatMap((groups) => groups.flatMap((g) => g.hooks.map((x) => x.command)));
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) expect(command).toContain('bottle-status');
    await exitSession(run);
  }, 360_000);

  it('oauth route: no dialog and the reply arrives, the fake sees the real token as Bearer', async () => {
    const f = await startClaudeFixture(h, {
      auth: 'oauth',
      bottle: 'tty-oauth',
      agents: [{ name: 'tty-oauth' }],
      reply: 'OAuth route answered interactively.',
    });
    fixtures.push(f);
    const { run, identity } = await openSession(f);
    await talk(f, run);
    expect(messageRequests(f).length).toBeGreaterThan(0);
    for (const r of messageRequests(f)) expect(r.headers.authorization).toBe(`Bearer ${f.secret}`);
    expect((await egressHosts(identity)).filter((host) => host.endsWith('anthropic.com'))).toEqual([]);
    await exitSession(run);
  }, 360_000);

  it('a resumed bottle opens on the prompt again, continues the conversation and keeps its own settings', async () => {
    const f = await startClaudeFixture(h, {
      auth: 'api-key',
      bottle: 'tty-resume',
      agents: [{ name: 'tty-resume' }],
      reply: 'Resumed bottles answer too.',
    });
    fixtures.push(f);
    const first = await openSession(f);
    await talk(f, first.run);
    const identity = first.identity;
    // A setting changed inside the bottle is the bottle's own: the resume must not put the user's back over it.
    const settingsPath = '/home/node/.claude/settings.json';
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const changed = await execIn(agent, ['sh', '-c', `echo '{"theme":"dark-daltonized"}' > ${settingsPath}`], {
      user: '1000',
    });
    expect(changed.code, changed.output).toBe(0);

    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
    await h.waitForEvent(identity, 'bottle.preserved');
    await until('the first CLI to exit', () => first.run.exited(), 60_000, first.run.screen);

    const second = await openSession(f, identity);
    // Claude Code continued the session: the first exchange is back on screen, then a new one.
    await until(
      'the earlier conversation',
      () => second.run.screen().includes('say hello to the bottle'),
      60_000,
      second.run.screen,
    );
    await talk(f, second.run, 'and once more after the resume');
    for (const r of messageRequests(f)) expect(r.headers['x-api-key']).toBe(f.secret);

    const resumedAgent = h.docker.getContainer(`cb-${identity}-agent`);
    const { output: settings } = await execIn(resumedAgent, ['cat', settingsPath], { user: '1000' });
    // The bottle's theme stays; the user's missing preference is added back (Claude Code itself may add more).
    expect(JSON.parse(settings)).toMatchObject({ theme: 'dark-daltonized', spinnerTipsEnabled: false });
    await exitSession(second.run);
  }, 480_000);
});
