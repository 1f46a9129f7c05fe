import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { hostIsLive, listedBottle, TestWorkers, until } from '../support/workers.js';

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
const workers = new TestWorkers(() => h);
let manifest: string;

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'pinned', bottle: 'box', command: ['sleep', '600'] }],
  });
}, 120_000);

afterAll(async () => {
  await workers.stopAll();
  await h?.cleanup();
});

describe('a bottle pinned to a host', () => {
  it('runs its effects only on that host, waits while it is down, and carries on when it returns', async () => {
    const workerA = workers.start(hostA);
    workers.start(hostB);
    await until('both hosts live', async () => (await hostIsLive(h, hostA)) && (await hostIsLive(h, hostB)));

    const identity = identityFrom(
      await h.cli(['--manifest', manifest, 'start', 'pinned', '--host', hostA, '--detach']),
    );
    const events = await h.waitForEvent(identity, 'agent.started');
    const requested = events.find((e) => e.type === 'bottle.start_requested')!;
    expect((requested.data as { plan: { host: string } }).plan.host).toBe(hostA);
    expect(await listedBottle(h, identity)).toMatchObject({ host: hostA, state: expect.stringMatching(/^running/) });

    await workers.stop(workerA);
    await until('host A gone', async () => !(await hostIsLive(h, hostA)));
    const waiting = await until('the waiting note', async () => {
      const row = await listedBottle(h, identity);
      return row?.state.includes(`waiting for host ${hostA}`) && row;
    });
    expect(waiting.state).toMatch(/^running/);

    // B decides the stop, but the effect it causes is A's: nothing stops while A is down.
    const stopping = h.cli(['stop', identity]);
    await new Promise((r) => setTimeout(r, 5000));
    const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
    expect((await agent.inspect()).State.Running).toBe(true);
    expect((await h.log.read(identity)).some((e) => e.type === 'bottle.stop_requested')).toBe(true);

    workers.start(hostA);
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
