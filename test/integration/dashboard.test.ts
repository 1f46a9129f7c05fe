import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { bottleCommandLine, TestTerminals, type TerminalRun } from '../support/tmux.js';

/** The dashboard is a terminal program: run it in a real tmux pane and read the screen. */
let h: BottleHarness;
const terminals = new TestTerminals('cbdash');

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  terminals.close();
  await h?.cleanup();
});

async function screenShows(run: TerminalRun, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let screen = '';
  while (Date.now() < deadline) {
    screen = run.visible();
    if (pattern.test(screen)) return screen;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`screen never matched ${pattern}:\n${screen}`);
}

describe('bottle dashboard', () => {
  it('shows live bottles (CI set too): state, a pending capability request, egress decisions; q quits', async () => {
    const manifest = h.writeManifest({
      bottles: [{ name: 'box', extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'watched', bottle: 'box', command: ['sleep', '600'] }],
    });
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'watched', '--detach']));
    // The agent asks for a capability and tries a blocked host: both must show up.
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const exec = await agent.exec({
      Cmd: [
        'bash',
        '-c',
        'gw=${HTTPS_PROXY#http://}; gw=${gw%:*}; curl -s -o /dev/null http://denied.test/; ' +
          'curl -s -X POST -d \'{"kind":"egress","host":"wanted.test","port":443,"reason":"docs"}\' ' +
          'http://$gw:3129/_bottle/capability',
      ],
      User: 'node',
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({});
    stream.resume();
    await new Promise((r) => stream.on('end', r));
    await h.waitForEvent(identity, 'capability.requested');

    // CI=true on purpose: ink holds every frame back until exit when it sees it, and CI machines set it.
    const dashboard = terminals.open(bottleCommandLine(h, ['dashboard'], { CI: 'true' }), {
      cwd: h.project,
      columns: 160,
      rows: 40,
      name: 'dash',
    });
    const screen = await screenShows(dashboard, new RegExp(`${identity}.*running \\(capability pending\\)`));
    expect(screen).toContain(`PENDING (${identity})`);
    expect(screen).toMatch(/wanted\.test/);
    expect(screen).toMatch(/egress denied GET denied\.test:80/);
    dashboard.keys('q');
    expect(await dashboard.exitCode()).toBe(0);
  }, 180_000);
});
