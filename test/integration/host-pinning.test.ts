import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceNames } from '../../src/shared/names.js';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  REPO,
  startHarness,
  type BottleHarness,
} from '../support/cli-harness.js';

/**
 * One Redis, two hosts (two workers with their own host ids, here on the same
 * daemon): a bottle pinned to host A has every effect run by A's worker.
 * While A has no live worker the bottle waits and says so; B decides its
 * commands but never runs its effects; when A's worker returns it carries on.
 */

let h: BottleHarness;
const suffix = randomBytes(3).toString('hex');
const hostA = `cb-pin-a-${suffix}`;
const hostB = `cb-pin-b-${suffix}`;
const workers = new Set<ChildProcess>();
let manifest: string;

function startWorker(hostId: string): ChildProcess {
  const child = spawn(process.execPath, [BOTTLE_BIN, 'worker', '--host', hostId], {
    cwd: REPO,
    env: h.env,
    stdio: 'ignore',
  });
  workers.add(child);
  child.once('exit', () => workers.delete(child));
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function listed(identity: string): Promise<{ state: string; host: string } | undefined> {
  const res = await h.cli(['list', '--format', 'json']);
  const rows = JSON.parse(res.stdout) as Array<{ identity: string; state: string; host: string }>;
  return rows.find((r) => r.identity === identity);
}

async function hostIsLive(hostId: string): Promise<boolean> {
  const res = await h.cli(['hosts', '--format', 'json']);
  return (JSON.parse(res.stdout) as Array<{ id: string }>).some((x) => x.id === hostId);
}

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'pinned', bottle: 'box', command: ['sleep', '600'] }],
  });
}, 120_000);

afterAll(async () => {
  for (const child of [...workers]) await stopWorker(child);
  await h?.cleanup();
});

describe('a bottle pinned to a host', () => {
  it('runs its effects only on that host, waits while it is down, and carries on when it returns', async () => {
    const workerA = startWorker(hostA);
    startWorker(hostB);
    await until('both hosts live', async () => (await hostIsLive(hostA)) && (await hostIsLive(hostB)));

    const identity = identityFrom(
      await h.cli(['--manifest', manifest, 'start', 'pinned', '--host', hostA, '--detach']),
    );
    const events = await h.waitForEvent(identity, 'agent.started');
    const requested = events.find((e) => e.type === 'bottle.start_requested')!;
    expect((requested.data as { plan: { host: string } }).plan.host).toBe(hostA);
    expect(await listed(identity)).toMatchObject({ host: hostA, state: expect.stringMatching(/^running/) });

    await stopWorker(workerA);
    await until('host A gone', async () => !(await hostIsLive(hostA)));
    const waiting = await until('the waiting note', async () => {
      const row = await listed(identity);
      return row?.state.includes(`waiting for host ${hostA}`) && row;
    });
    expect(waiting.state).toMatch(/^running/);

    // B decides the stop, but the effect it causes is A's: nothing stops while A is down.
    const stopping = h.cli(['stop', identity]);
    await new Promise((r) => setTimeout(r, 5000));
    const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
    expect((await agent.inspect()).State.Running).toBe(true);
    expect((await h.log.read(identity)).some((e) => e.type === 'bottle.stop_requested')).toBe(true);

    startWorker(hostA);
    const stopped = await stopping;
    expect(stopped.code, stopped.stderr).toBe(0);
    const after = await h.waitForEvent(identity, 'bottle.preserved');
    expect(after.filter((e) => e.type === 'effect.failed')).toEqual([]);
  }, 240_000);

  it('refuses a start pinned to a host no live worker serves', async () => {
    const res = await h.cli(['--manifest', manifest, 'start', 'pinned', '--host', 'cb-no-such-host', '--detach']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/no live worker serves host "cb-no-such-host"/);
  });
});
