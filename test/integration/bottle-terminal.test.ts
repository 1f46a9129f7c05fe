import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOTTLE_BIN, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * Interactive use through a real pseudo-terminal: `bottle start` runs inside
 * a detached tmux session (tmux owns the pty, as a user's terminal would), and
 * the test types into it with send-keys and reads the screen with
 * capture-pane. tmux runs on its own socket so only this file's server and
 * sessions are touched.
 */

const TMUX_SOCKET = `cbtest-${randomBytes(4).toString('hex')}`;
const sessions: string[] = [];
let h: BottleHarness;
let manifest: string;
let work: string;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', TMUX_SOCKET, ...args], { encoding: 'utf8' });
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

beforeAll(async () => {
  h = await startHarness();
  work = mkdtempSync(join(tmpdir(), 'cb-term-'));
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [
      { name: 'shell', bottle: 'box', command: ['bash'] },
      {
        name: 'trapper',
        bottle: 'box',
        command: ['bash', '-c', 'trap "exit 130" INT; while true; do sleep 0.2; done'],
      },
    ],
  });
}, 120_000);

afterAll(async () => {
  for (const s of sessions) {
    try {
      tmux('kill-session', '-t', s);
    } catch {
      /* already gone */
    }
  }
  // The server exits with its last session; its socket file stays behind.
  rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, TMUX_SOCKET), { force: true });
  await h?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface TerminalRun {
  session: string;
  exitFile: string;
  screen(): string;
}

/**
 * Starts `bottle --manifest M start <agent>` in a fresh tmux session; the shell records the CLI's exit code afterwards.
 */
function startInTmux(agent: string): TerminalRun {
  const session = `cbterm-${agent}-${randomBytes(3).toString('hex')}`;
  const exitFile = join(work, `${session}.exit`);
  const script = join(work, `${session}.sh`);
  const env = {
    PATH: h.env.PATH ?? '/usr/bin:/bin',
    HOME: h.env.HOME ?? '/root',
    CLAUDE_BOTTLE_HOME: h.home,
    REDIS_URL: h.redis.url,
  };
  writeFileSync(
    script,
    [
      `cd ${q(h.project)}`,
      `env -i ${Object.entries(env)
        .map(([k, v]) => `${k}=${q(v)}`)
        .join(
          ' ',
        )} TERM="$TERM" ${q(process.execPath)} ${q(BOTTLE_BIN)} --manifest ${q(manifest)} start --yes ${q(agent)}`,
      `echo $? > ${q(exitFile)}`,
      // Keep the pane (and its last screen) around for capture-pane.
      'sleep 3600',
      '',
    ].join('\n'),
  );
  tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', `bash ${q(script)}`);
  sessions.push(session);
  return { session, exitFile, screen: () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session) };
}

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The identity of the one bottle of `agent` in this harness's Redis. */
async function identityOf(agent: string): Promise<string> {
  return until(`a ${agent} bottle`, async () => (await h.log.listBottles()).find((b) => b.agent === agent)?.identity);
}

async function exitCode(run: TerminalRun): Promise<number> {
  const text = await until(
    `the CLI to exit (${run.session})`,
    () => existsSync(run.exitFile) && readFileSync(run.exitFile, 'utf8').trim(),
  );
  return Number(text);
}

describe('bottle start attaches a real terminal', () => {
  it('types into the agent, follows window resizes, and returns the agent exit code with the resume hint', async () => {
    const run = startInTmux('shell');
    const identity = await identityOf('shell');
    await h.waitForEvent(identity, 'agent.started');
    await until('the attach notice', () => run.screen().includes(`attached to ${identity}`));

    // The shell computes the marker, so seeing it proves input reached the agent and output came back.
    tmux('send-keys', '-t', run.session, 'echo marker-$((6*7))', 'Enter');
    await until('marker-42 on screen', () => run.screen().includes('marker-42'));

    tmux('resize-window', '-t', run.session, '-x', '91', '-y', '27');
    const [rows, cols] = tmux('display-message', '-p', '-t', run.session, '#{pane_height} #{pane_width}')
      .trim()
      .split(' ');
    expect(cols).toBe('91');
    // SIGWINCH -> the CLI resizes the container's TTY; ask the agent what it sees (retry: the resize is asynchronous).
    await until(
      `stty size ${rows} ${cols}`,
      () => {
        tmux('send-keys', '-t', run.session, 'echo size=$(stty size | tr " " x)', 'Enter');
        return run.screen().includes(`size=${rows}x${cols}`);
      },
      20_000,
    );

    tmux('send-keys', '-t', run.session, 'exit 3', 'Enter');
    expect(await exitCode(run)).toBe(3);
    expect(run.screen()).toContain(`bottle resume ${identity}`);
    const events = await h.waitForEvent(identity, 'bottle.preserved');
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 3 });
  }, 180_000);

  it('Ctrl-C reaches the agent as SIGINT and the bottle is preserved', async () => {
    const run = startInTmux('trapper');
    const identity = await identityOf('trapper');
    await h.waitForEvent(identity, 'agent.started');
    await until('the attach notice', () => run.screen().includes(`attached to ${identity}`));

    tmux('send-keys', '-t', run.session, 'C-c');
    const events = await h.waitForEvent(identity, 'bottle.preserved', 60_000);
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 130 });
    expect(await exitCode(run)).toBe(130);
    expect(run.screen()).toContain(`bottle resume ${identity}`);
  }, 180_000);
});
