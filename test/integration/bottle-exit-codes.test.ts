import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

let h: BottleHarness;
let manifest: string;

beforeAll(async () => {
  h = await startHarness();
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [
      { name: 'ok', bottle: 'box', command: ['bash', '-c', 'exit 0'] },
      { name: 'crash', bottle: 'box', command: ['bash', '-c', 'exit 1'] },
      { name: 'sleeper', bottle: 'box', command: ['sleep', '600'] },
    ],
  });
});
afterAll(async () => {
  await h?.cleanup();
});

async function labelled(identity: string) {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const [containers, networks] = await Promise.all([
    h.docker.listContainers({ all: true, filters }),
    h.docker.listNetworks({ filters }),
  ]);
  return containers.length + networks.length;
}

describe('the worker records the agent real exit code and applies the preservation matrix', () => {
  it('exit 0: cleaned, state folder removed, nothing labelled remains', async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'ok', '--detach']);
    const identity = identityFrom(started);
    const events = await h.waitForEvent(identity, 'bottle.cleaned');
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 0 });
    expect(existsSync(join(h.home, 'state', identity))).toBe(false);
    expect(await labelled(identity)).toBe(0);
  });

  it('exit 1: preserved with the resume hint, nothing labelled remains', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'crash', '--detach']));
    const events = await h.waitForEvent(identity, 'bottle.preserved');
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 1 });
    expect(existsSync(join(h.home, 'state', identity, '.preserve'))).toBe(true);
    const shown = await h.cli(['events', identity]);
    expect(shown.stdout).toContain(`bottle resume ${identity}`);
    expect(await labelled(identity)).toBe(0);
  });

  it('SIGKILL (137): preserved', async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'agent.started');
    await h.docker.getContainer(`cb-${identity}-agent`).kill({ signal: 'SIGKILL' });
    const events = await h.waitForEvent(identity, 'bottle.preserved');
    expect(events.find((e) => e.type === 'agent.exited')!.data).toMatchObject({ code: 137, signal: 'SIGKILL' });
    expect(await labelled(identity)).toBe(0);
  });
});
