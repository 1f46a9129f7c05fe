import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../../src/shared/process-alive.js';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  REPO,
  startHarness,
  type BottleHarness,
} from '../support/cli-harness.js';
import { bottleCommandLine, TestTerminals } from '../support/tmux.js';
import { hostIsLive, show, TestWorkers, until } from '../support/workers.js';

/**
 * The follows (`events --follow`, `logs --follow`) keep following when no
 * worker serves their bottle's host, and say so: one line naming the host and
 * what to run, one line when a worker serves it again, nothing while one
 * does, nothing for a bottle that rests (stopped and preserved). An attached
 * terminal (in tmux, on its own socket) is told the same. The local worker a
 * CLI started is revived by a follow as by the commands that wait.
 */

let h: BottleHarness;
let manifest: string;
const workers = new TestWorkers(() => h);
const followers = new Set<ChildProcess>();
const suffix = randomBytes(3).toString('hex');
// Exits 0 on SIGTERM (a stop); it says when it runs.
const AGENT = ['sh', '-c', 'trap "exit 0" TERM; echo armed; sleep 600 & wait'];
// A few of the follow's once-a-second checks.
const SEVERAL_CHECKS_MS = 4000;

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'quiet', bottle: 'box', command: AGENT }],
  });
}, 120_000);

const terminals = new TestTerminals('cbfollow');

afterAll(async () => {
  terminals.close();
  for (const child of followers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await workers.stopAll();
  await h?.cleanup();
}, 120_000);

interface Follower {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `bottle ARGS` left running, its output collected; ended by its pid in afterAll if the test does not. */
function follow(args: string[]): Follower {
  const child = spawn(process.execPath, [BOTTLE_BIN, ...args], {
    cwd: REPO,
    env: h.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  followers.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  exited.finally(() => followers.delete(child)).catch(() => undefined);
  return { child, stdout: () => out, stderr: () => err, exited };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (text: string, part: string) => text.split(part).length - 1;

describe('a follow with no live worker for its bottle', () => {
  it('says which host has none and what to run, then that one serves it again; never while one does', async () => {
    const host = `cb-follow-${suffix}`;
    let worker = workers.start(host);
    await until('the host worker live', () => hostIsLive(h, host));
    const started = await h.cli(['--manifest', manifest, 'start', 'quiet', '--host', host, '--detach']);
    expect(started.code, show(started)).toBe(0);
    const identity = identityFrom(started);

    const events = follow(['events', identity, '--follow']);
    const logs = follow(['logs', identity, '--follow']);
    await until('the events followed', async () => events.stdout().includes('agent.started'));
    await until('the agent output followed', async () => logs.stdout().includes('armed'));
    await pause(SEVERAL_CHECKS_MS);
    expect(events.stderr()).toBe('');
    expect(logs.stderr()).toBe('');

    await workers.stop(worker);
    const none = `${identity}: no live worker serves host ${host}; still following`;
    const run = `\`bottle worker --host ${host}\``;
    for (const f of [events, logs]) {
      await until('the follow saying no worker serves the host', async () => f.stderr().includes(none));
      expect(f.stderr()).toContain(run);
    }
    await pause(SEVERAL_CHECKS_MS);
    // Said once, and the follows follow on.
    for (const f of [events, logs]) {
      expect(count(f.stderr(), none), f.stderr()).toBe(1);
      expect(f.child.exitCode).toBeNull();
    }

    worker = workers.start(host);
    const back = `a live worker serves ${identity}'s host again`;
    for (const f of [events, logs])
      await until('the follow saying a worker is back', async () => f.stderr().includes(back));

    // Stopped, the bottle rests preserved: no worker is needed to follow it.
    const stopped = await h.cli(['stop', identity], { timeoutMs: 120_000 });
    expect(stopped.code, show(stopped)).toBe(0);
    await until('the stop followed', async () => events.stdout().includes('bottle.preserved'));
    expect(await logs.exited).toBe(0);
    await workers.stop(worker);
    await pause(SEVERAL_CHECKS_MS);
    expect(count(events.stderr(), none), events.stderr()).toBe(1);
    expect(events.child.exitCode).toBeNull();
    events.child.kill('SIGTERM');
    expect(await events.exited).toBe(0);
  }, 300_000);

  it('tells an attached terminal, over the agent screen', async () => {
    const host = `cb-follow-tty-${suffix}`;
    let worker = workers.start(host);
    await until('the host worker live', () => hostIsLive(h, host));
    const started = await h.cli(['--manifest', manifest, 'start', 'quiet', '--host', host, '--detach']);
    expect(started.code, show(started)).toBe(0);
    const identity = identityFrom(started);

    const attach = terminals.open(bottleCommandLine(h, ['attach', identity]), {
      cwd: REPO,
      columns: 200,
      rows: 40,
      name: 'attach',
    });
    const screen = () => attach.screen();
    await until('the attach notice', async () => screen().includes(`attached to ${identity}`));

    await workers.stop(worker);
    const none = `${identity}: no live worker serves host ${host}; still following`;
    await until('the terminal told no worker serves the host', async () => screen().includes(none));
    worker = workers.start(host);
    const back = `a live worker serves ${identity}'s host again`;
    await until('the terminal told a worker is back', async () => screen().includes(back));

    attach.keys('C-p', 'C-q');
    await until('the detach', async () => screen().includes('detached; the bottle keeps running'));
    expect(count(screen(), none), screen()).toBe(1);
    const stopped = await h.cli(['stop', identity], { timeoutMs: 120_000 });
    expect(stopped.code, show(stopped)).toBe(0);
  }, 300_000);

  it('revives the local worker a CLI started when its process is gone', async () => {
    // With no other host live, the start pins the bottle to this machine and starts the local worker.
    await workers.stopAll();
    const started = await h.cli(['--manifest', manifest, 'start', 'quiet', '--detach']);
    expect(started.code, show(started)).toBe(0);
    const identity = identityFrom(started);
    const events = follow(['events', identity, '--follow']);
    await until('the events followed', async () => events.stdout().includes('agent.started'));

    const pidFile = join(h.home, 'worker', 'worker.pid');
    const first = Number(readFileSync(pidFile, 'utf8').trim());
    process.kill(first, 'SIGKILL');
    await until('the worker gone', async () => !processAlive(first));
    const revived = `the local worker (pid ${first}) is gone; starting it again`;
    await until('the follow reviving the worker', async () => events.stderr().includes(revived));
    const second = Number(readFileSync(pidFile, 'utf8').trim());
    expect(second).not.toBe(first);
    expect(processAlive(second)).toBe(true);

    const stopped = await h.cli(['stop', identity], { timeoutMs: 120_000 });
    expect(stopped.code, show(stopped)).toBe(0);
    events.child.kill('SIGTERM');
    expect(await events.exited).toBe(0);
    expect(events.stderr()).not.toContain('no live worker');
  }, 300_000);
});
