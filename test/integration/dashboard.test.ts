import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  REPO,
  startHarness,
  type BottleHarness,
} from '../support/cli-harness.js';

/** The dashboard is a terminal program: run it in a real tmux pane and read the screen. */
let h: BottleHarness;
const session = `cb-dash-${randomUUID().slice(0, 8)}`;
// A private tmux server (-L) so other tests' tmux sessions are never touched.
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', session, ...args], { encoding: 'utf8' });

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    /* already gone */
  }
  await h?.cleanup();
});

async function screenShows(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let screen = '';
  while (Date.now() < deadline) {
    screen = tmux('capture-pane', '-p', '-t', session);
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

    const envArgs = Object.entries(h.env)
      .filter(([k]) => /^(CLAUDE_BOTTLE_HOME|REDIS_URL|PATH|HOME)$/.test(k))
      .map(([k, v]) => `${k}=${v}`);
    // CI=true on purpose: ink holds every frame back until exit when it sees it, and CI machines set it.
    tmux(
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '160',
      '-y',
      '40',
      'env',
      ...envArgs,
      'CI=true',
      process.execPath,
      BOTTLE_BIN,
      'dashboard',
    );
    const screen = await screenShows(new RegExp(`${identity}.*running \\(capability pending\\)`));
    expect(screen).toContain(`PENDING (${identity})`);
    expect(screen).toMatch(/wanted\.test/);
    expect(screen).toMatch(/egress denied GET denied\.test:80/);
    tmux('send-keys', '-t', session, 'q');
    const deadline = Date.now() + 10_000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      try {
        tmux('has-session', '-t', session);
        const pane = tmux('list-panes', '-t', session, '-F', '#{pane_dead}');
        gone = pane.trim() === '1';
      } catch {
        gone = true;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(gone).toBe(true);
  }, 180_000);
});
