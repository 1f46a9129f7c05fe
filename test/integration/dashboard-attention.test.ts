import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  identityFrom,
  PIN_DEFAULT_HOSTS,
  startHarness,
  type BottleHarness,
  type CliResult,
} from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { bottleCommandLine, shellQuote, TestTerminals, type TerminalRun } from '../support/tmux.js';
import { until } from '../support/workers.js';

/**
 * Issue 22 through a real terminal: `bottle dashboard` runs in a tmux pane over two running bottles,
 * under `script`, which keeps every byte the dashboard wrote (the bells among them). An agent asks
 * for the operator with `bottle-status attention`, as its hooks do: that bottle is listed first, and
 * the bell rings once for it, not again when the screen is redrawn, again for a later attention,
 * not for an answered one. `t` attaches the terminal to the selected bottle (keys reach its shell),
 * Ctrl-P Ctrl-Q comes back to the dashboard, which then rings for what was raised meanwhile.
 */

let h: BottleHarness;
let manifest: string;
const terminals = new TestTerminals('cbdashbell');

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'shell', bottle: 'box', command: ['bash'] }],
  });
}, 120_000);

afterAll(async () => {
  terminals.close();
  await h?.cleanup();
}, 120_000);

const show = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const inAgent = (identity: string, script: string) =>
  execIn(h.docker.getContainer(`cb-${identity}-agent`), ['bash', '-c', script], { user: 'node' });

async function startRunning(): Promise<string> {
  const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'shell', '--detach']));
  const running = await h.cli(['wait', identity, '--until', 'running', '--timeout', '120']);
  expect(running.code, show(running)).toBe(0);
  return identity;
}

async function ask(identity: string, question: string): Promise<void> {
  const asked = await inAgent(identity, `bottle-status attention --kind question ${shellQuote(question)}`);
  expect(asked.code, asked.output).toBe(0);
}

// A bell inside an OSC sequence only ends it (a title set by a shell): it rings nothing.
const OSC = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** What the dashboard wrote to its terminal so far, and the bells rung in it. */
function recorder(path: string) {
  const written = () => readFileSync(path, 'latin1');
  return {
    written,
    bells: () => (written().replace(OSC, '').match(/\x07/g) ?? []).length,
  };
}

/** The bottles in the order the dashboard lists them on its screen now. */
function listed(run: TerminalRun, identities: string[]): string[] {
  const rows = run.visible().split('\n');
  return rows.map((row) => /^[> ] (\S+)\s/.exec(row)?.[1] ?? '').filter((id) => identities.includes(id));
}

const sameOrder = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

describe('bottle dashboard: needs-you first, the bell, t to attach', () => {
  it('lists the asking bottle first, rings once per new attention, attaches with t and returns on detach', async () => {
    const both = [await startRunning(), await startRunning()];
    const rawPath = join(terminals.folder, 'dashboard.raw');
    const raw = recorder(rawPath);
    const dashboard = terminals.open(
      `script -qfec ${shellQuote(bottleCommandLine(h, ['dashboard']))} ${shellQuote(rawPath)}`,
      { cwd: h.project, columns: 160, rows: 40, name: 'dash' },
    );
    const [top, other] = await until('both bottles listed', async () => {
      const order = listed(dashboard, both);
      return order.length === 2 && order;
    });
    expect(raw.bells()).toBe(0);

    // The bottle listed second asks: it moves to the top, and the bell rings.
    await ask(other, 'which branch?');
    await until('the asking bottle first', async () => sameOrder(listed(dashboard, both), [other, top]));
    expect(dashboard.visible()).toMatch(new RegExp(`${other}\\s.*! question: which branch\\?`));
    await until('a bell', async () => raw.bells() >= 1);

    // A redraw for another bottle's egress decision rings nothing for the attention already shown.
    const egress = await inAgent(top, 'curl -s -o /dev/null http://denied.test/; true');
    expect(egress.code, egress.output).toBe(0);
    await until('the egress decision drawn', async () => raw.written().includes('denied.test:80'));
    expect(raw.bells()).toBe(1);

    // A later attention of the same bottle rings again, once.
    await ask(other, 'which branch, again?');
    await until('the later question drawn', async () => raw.written().includes('which branch, again?'));
    expect(raw.bells()).toBe(2);

    // Answered (the agent works again): no bell, and the bottle goes back among the rest.
    const working = await inAgent(other, 'bottle-status working');
    expect(working.code, working.output).toBe(0);
    await until('the answer drawn', async () => raw.written().includes('the agent is working again'));
    await until('the answered bottle back in its place', async () => sameOrder(listed(dashboard, both), [top, other]));
    expect(raw.bells()).toBe(2);

    // Asked once more, it is first and selected: t attaches the terminal to it.
    await ask(other, 'ready to merge?');
    await until('the third question first', async () => sameOrder(listed(dashboard, both), [other, top]));
    await until('its bell', async () => raw.bells() >= 3);
    expect(dashboard.visible()).toMatch(new RegExp(`^> ${other}\\s`, 'm'));
    dashboard.keys('t');
    await until('the attach notice', async () => dashboard.screen().includes(`attached to ${other}`));
    dashboard.type('touch /tmp/dash-attach-mark && echo typed-$((6*7))');
    dashboard.keys('Enter');
    await until('the typed command run in the bottle', async () => dashboard.screen().includes('typed-42'));
    expect((await inAgent(other, 'test -e /tmp/dash-attach-mark')).code).toBe(0);
    expect((await inAgent(top, 'test -e /tmp/dash-attach-mark')).code).not.toBe(0);

    // While attached, the other bottle asks; detached, the dashboard is back and rings for it.
    await ask(top, 'may I push?');
    dashboard.keys('C-p', 'C-q');
    await until('the dashboard back after the detach', async () => {
      const written = raw.written();
      const detached = written.indexOf('detached; the bottle keeps running');
      return detached >= 0 && written.indexOf('may I push?', detached) > detached;
    });
    await until('the bell for what was asked meanwhile', async () => raw.bells() >= 4);
    expect(raw.bells()).toBe(4);
    expect(dashboard.visible()).toContain('claude-bottle dashboard');

    // The keys are the dashboard's again.
    dashboard.keys('q');
    expect(await dashboard.exitCode()).toBe(0);
    expect(raw.bells()).toBe(4);
  }, 420_000);
});
