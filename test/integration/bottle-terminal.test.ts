import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { bottleCommandLine, TestTerminals, type TerminalRun } from '../support/tmux.js';

/**
 * Interactive use through a real pseudo-terminal: `bottle start` runs inside
 * a detached tmux session (tmux owns the pty, as a user's terminal would), and
 * the test types into it with send-keys and reads the screen with
 * capture-pane. tmux runs on its own socket so only this file's server and
 * sessions are touched.
 */

const terminals = new TestTerminals('cbtest');
let h: BottleHarness;
let manifest: string;

beforeAll(async () => {
  h = await startHarness();
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
  terminals.close();
  await h?.cleanup();
});

/** `bottle --manifest M start <agent>` in a fresh tmux session; the shell records the CLI's exit code afterwards. */
function startInTmux(agent: string): TerminalRun {
  const command = bottleCommandLine(h, ['--manifest', manifest, 'start', '--yes', agent]);
  return terminals.open(command, { cwd: h.project, name: `cbterm-${agent}` });
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

describe('bottle start attaches a real terminal', () => {
  it('types into the agent, follows window resizes, and returns the agent exit code with the resume hint', async () => {
    const run = startInTmux('shell');
    const identity = await identityOf('shell');
    await h.waitForEvent(identity, 'agent.started');
    await until('the attach notice', () => run.screen().includes(`attached to ${identity}`));

    // The shell computes the marker, so seeing it proves input reached the agent and output came back.
    run.keys('echo marker-$((6*7))', 'Enter');
    await until('marker-42 on screen', () => run.screen().includes('marker-42'));

    terminals.tmux('resize-window', '-t', run.session, '-x', '91', '-y', '27');
    const [rows, cols] = terminals
      .tmux('display-message', '-p', '-t', run.session, '#{pane_height} #{pane_width}')
      .trim()
      .split(' ');
    expect(cols).toBe('91');
    // SIGWINCH -> the CLI resizes the container's TTY; ask the agent what it sees (retry: the resize is asynchronous).
    await until(
      `stty size ${rows} ${cols}`,
      () => {
        run.keys('echo size=$(stty size | tr " " x)', 'Enter');
        return run.screen().includes(`size=${rows}x${cols}`);
      },
      20_000,
    );

    run.keys('exit 3', 'Enter');
    expect(await run.exitCode()).toBe(3);
    expect(run.screen()).toContain(`bottle resume ${identity}`);
    const events = await h.waitForEvent(identity, 'bottle.preserved');
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 3 });
  }, 180_000);

  it('Ctrl-C reaches the agent as SIGINT and the bottle is preserved', async () => {
    const run = startInTmux('trapper');
    const identity = await identityOf('trapper');
    await h.waitForEvent(identity, 'agent.started');
    await until('the attach notice', () => run.screen().includes(`attached to ${identity}`));

    run.keys('C-c');
    const events = await h.waitForEvent(identity, 'bottle.preserved', 60_000);
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 130 });
    expect(await run.exitCode()).toBe(130);
    expect(run.screen()).toContain(`bottle resume ${identity}`);
  }, 180_000);
});
