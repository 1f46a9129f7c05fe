import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../../src/shared/names.js';
import { BOTTLE_BIN, identityFrom, PIN_DEFAULT_HOSTS, startHarness } from '../support/cli-harness.js';
import type { BottleHarness } from '../support/cli-harness.js';
import { bottleCommandLine, TestTerminals, type TerminalRun } from '../support/tmux.js';

/**
 * Issue 13, items 2 and 7, through a real terminal where it matters: `start`
 * shows the plan and asks `Launch? [y/N]` (n creates nothing, y launches),
 * refuses without a terminal unless --yes; after Ctrl-P Ctrl-Q, `bottle
 * attach` gets the session back and `bottle logs` shows what the agent wrote;
 * a launch that fails prints its resume hint and stays in `bottle list`.
 * tmux runs on its own socket, so only this file's sessions are touched.
 */

const terminals = new TestTerminals('cbconfirm');
let h: BottleHarness;
let manifest: string;
/** A `bottle logs --follow` a test left running: ended by its pid in afterAll. */
let follower: ChildProcess | undefined;

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest(
    {
      bottles: [
        { name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        { name: 'broken', dockerfile: './broken.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
      ],
      agents: [
        { name: 'shell', bottle: 'box', command: ['bash'] },
        { name: 'unbuildable', bottle: 'broken', command: ['bash'] },
      ],
    },
    { 'broken.Dockerfile': 'FROM debian:bookworm-slim\nRUN echo this image cannot be built && exit 3\n' },
  );
}, 120_000);

afterAll(async () => {
  if (follower && follower.exitCode === null && follower.signalCode === null) follower.kill('SIGTERM');
  terminals.close();
  await h?.cleanup();
});

/** Runs `bottle ARGS` in a fresh tmux pane (a real terminal); the shell records its exit code. */
function inTmux(args: string[]): TerminalRun {
  return terminals.open(bottleCommandLine(h, args), { cwd: h.project, rows: 50, name: 'cbc' });
}

type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

async function until<T>(what: string, probe: Probe<T>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function labelledContainers(identity: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const found = await h.docker.listContainers({ all: true, filters });
  return found.map((c) => c.Names[0]);
}

describe('confirm before launch', () => {
  it('without a terminal and without --yes, start and resume refuse with exit 2 and create nothing', async () => {
    const start = await h.cli(['--manifest', manifest, 'start', 'shell'], { askToLaunch: true });
    expect(start.code).toBe(2);
    const refusal = /no terminal to confirm the launch on; pass --yes/;
    expect(start.stderr.trim().split('\n')).toEqual([expect.stringMatching(refusal)]);
    const resume = await h.cli(['--manifest', manifest, 'resume', 'shell-abcde'], { askToLaunch: true });
    expect(resume.code).toBe(2);
    expect(resume.stderr).toContain('pass --yes');
    expect(await h.log.listBottles()).toEqual([]);
    // Not even the local worker was started.
    expect(existsSync(join(h.home, 'worker', 'worker.pid'))).toBe(false);
  });

  it('on a terminal it shows the plan and asks; n launches nothing', async () => {
    const run = inTmux(['--manifest', manifest, 'start', 'shell']);
    const screen = await until('the question', () => run.screen().includes('Launch? [y/N]') && run.screen());
    expect(screen).toMatch(/hosts:\s+\d+ allowed/);
    const identity = /identity:\s+(shell-[0-9a-z]{5})/.exec(screen)?.[1];
    expect(identity).toBeDefined();
    run.keys('n', 'Enter');
    expect(await run.exitCode()).toBe(1);
    expect(run.screen()).toContain('not launched');
    expect(await h.log.exists(identity!)).toBe(false);
    expect(await h.log.listBottles()).toEqual([]);
    expect(await labelledContainers(identity!)).toEqual([]);
  }, 120_000);

  it('y launches and attaches; after a detach, logs shows the output and attach gets the terminal back', async () => {
    const run = inTmux(['--manifest', manifest, 'start', 'shell']);
    const screen = await until('the question', () => run.screen().includes('Launch? [y/N]') && run.screen());
    const identity = /identity:\s+(shell-[0-9a-z]{5})/.exec(screen)![1];
    run.keys('y', 'Enter');
    await until('the attach notice', () => run.screen().includes(`attached to ${identity}`), 180_000);
    run.keys("printf '\\033[31mcolour-%s\\033[0m\\n' $((6*7))", 'Enter');
    await until('colour-42 on screen', () => run.screen().includes('colour-42'));

    run.keys('C-p', 'C-q');
    expect(await run.exitCode()).toBe(0);
    expect(run.screen()).toContain(`Re-attach with: bottle attach ${identity}`);
    const listed = await h.cli(['list', '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ identity, state: 'running' })]);

    // Off a terminal, logs neutralises the agent's control characters.
    const logs = await h.cli(['logs', identity]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('colour-42');
    expect(logs.stdout).not.toContain('\x1b');
    expect(logs.stdout).not.toContain('\r');

    const noTerminal = await h.cli(['attach', identity]);
    expect(noTerminal.code).toBe(2);
    expect(noTerminal.stderr).toContain(`bottle logs ${identity} --follow`);

    const again = inTmux(['attach', identity]);
    await until('the re-attach notice', () => again.screen().includes(`attached to ${identity}`));
    again.keys('echo again-$((2*3))', 'Enter');
    await until('again-6 on screen', () => again.screen().includes('again-6'));
    // logs --follow sees the session to its end; it follows once it has shown the output so far.
    follower = spawn(process.execPath, [BOTTLE_BIN, 'logs', identity, '--follow'], {
      cwd: h.project,
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    follower.stdout!.on('data', (b: Buffer) => (followed += b.toString()));
    const followEnded = new Promise<number | null>((resolve) => follower!.on('close', (code) => resolve(code)));
    await until('logs --follow showing the output so far', () => followed.includes('again-6'));
    again.keys('echo bye-$((3*3)); exit 5', 'Enter');
    expect(await again.exitCode()).toBe(5);
    expect(again.screen()).toContain(`bottle resume ${identity}`);
    expect(await followEnded).toBe(0);
    expect(followed).toContain('bye-9');

    const attachPreserved = await h.cli(['attach', identity]);
    expect(attachPreserved.code).toBe(2); // no terminal comes first
    const logsPreserved = await h.cli(['logs', identity]);
    expect(logsPreserved.code).toBe(1);
    expect(logsPreserved.stderr).toContain(`bottle resume ${identity}`);
  }, 300_000);
});

describe('a launch that fails', () => {
  it('prints the resume hint and stays in bottle list (with or without --all) and in the dashboard', async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'unbuildable', '--detach'], { timeoutMs: 240_000 });
    const identity = identityFrom(started);
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`bottle ${identity} did not start`);
    expect(started.stderr).toContain(`resume it with: bottle resume ${identity}`);
    for (const args of [['list'], ['list', '--all']]) {
      const listed = await h.cli([...args, '--format', 'json']);
      expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ identity, state: 'failed' }));
    }
    const text = await h.cli(['list']);
    expect(text.stdout).toMatch(new RegExp(`${identity}\\s.*failed`));
    const dashboard = inTmux(['dashboard']);
    const failedRow = new RegExp(`${identity}\\s.*failed`);
    await until('the failed bottle in the dashboard', () => failedRow.test(dashboard.screen()), 30_000);
    dashboard.keys('q');
    expect(await dashboard.exitCode()).toBe(0);
  }, 300_000);
});
