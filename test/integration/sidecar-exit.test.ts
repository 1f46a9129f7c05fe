import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { killSidecar, listedState as listedSidecarState } from '../support/sidecar-kill.js';

/**
 * A bottle whose gateway or network watch dies fails closed: the sidecar's exit is recorded, the
 * agent is stopped, and the bottle is preserved with reason enforcement_lost and a resume hint.
 * `bottle list` never calls it running once the exit is recorded. Under runsc, as bottles run.
 */
let h: BottleHarness;
let manifest: string;

beforeAll(async () => {
  h = await startHarness({ env: { CLAUDE_BOTTLE_RUNTIME: 'runsc' } });
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'sleeper', bottle: 'box', command: ['sleep', '600'] }],
  });
}, 60_000);
afterAll(async () => {
  await h?.cleanup();
});

const listedState = (identity: string) => listedSidecarState(h, identity);

describe.each([
  ['netwatch', 'network watch'],
  ['gateway', 'gateway'],
] as const)('docker kill of the %s', (role, shown) => {
  it('ends the bottle preserved (enforcement_lost), an event says so; list never says running after', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'netwatch.started');
    expect(await listedState(identity)).toBe('running');

    const { exit, unrecordedMs, seen, log } = await killSidecar(h, identity, role);
    expect(exit.data).toEqual({ role, container: `cb-${identity}-${role}`, code: 137, signal: 'SIGKILL' });
    // How long the loss went unrecorded: the watch's wait, one append.
    expect(unrecordedMs).toBeLessThan(5_000);
    expect(seen.length).toBeLessThan(120);
    expect(seen.filter((s) => s.startsWith('running'))).toEqual([]);
    for (const s of seen) expect([`stopping (${role} exited)`, 'snapshotting', 'preserving']).toContain(s);

    const types = log.map((e) => e.type);
    expect(types.indexOf('sidecar.exited')).toBeLessThan(types.indexOf('agent.exited'));
    // Recorded once (the watch ended with it); the bottle names the first as its reason.
    expect(log.filter((e) => e.type === 'sidecar.exited' && e.data.role === role)).toHaveLength(1);
    expect(log.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ signal: expect.any(String) });
    expect(log.at(-1)).toMatchObject({ type: 'bottle.preserved', data: { reason: 'enforcement_lost' } });

    const shownEvents = await h.cli(['events', identity]);
    expect(shownEvents.stdout).toContain(`${shown} cb-${identity}-${role} exited with code 137 (SIGKILL)`);
    expect(shownEvents.stdout).toContain(`resume with: bottle resume ${identity}`);
    const left = await h.docker.listContainers({ all: true, filters: JSON.stringify({ name: [`cb-${identity}-`] }) });
    expect(left).toEqual([]);
  }, 240_000);
});

describe('a normal end', () => {
  it('records no sidecar exit when the teardown removes the gateway and the watch', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'netwatch.started');
    expect((await h.cli(['stop', identity])).code).toBe(0);
    const log = await h.waitForEvent(identity, 'bottle.preserved');
    expect(log.at(-1)).toMatchObject({ type: 'bottle.preserved', data: { reason: 'stopped' } });
    // Give a late watch the time to report what it saw.
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await h.log.read(identity)).map((e) => e.type)).not.toContain('sidecar.exited');
  }, 240_000);
});
