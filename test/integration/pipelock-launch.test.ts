import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../../src/shared/names.js';
import { PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * pipelock itself cannot run here (no image, nothing can be pulled; see
 * pipelock-runtime.test.ts, which runs when the image exists). What can be
 * proven: a pipelock bottle without its image fails fast with a clear reason
 * and leaves nothing behind.
 */
let h: BottleHarness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.cleanup();
});

describe('egress.proxy "pipelock" without the image on the daemon', () => {
  it('fails the bottle with a message naming the image, and tears everything down', async () => {
    const image = 'claude-bottle-test/no-such-pipelock:0';
    const manifest = h.writeManifest({
      bottles: [
        {
          name: 'pl',
          egress: { allow: ['example.test'], proxy: 'pipelock', pipelock_image: image },
          extra_hosts: PIN_DEFAULT_HOSTS,
        },
      ],
      agents: [{ name: 'pl', bottle: 'pl', command: ['sleep', '60'] }],
    });
    const plan = await h.cli(['--manifest', manifest, 'start', 'pl', '--dry-run', '--format', 'json']);
    expect(JSON.parse(plan.stdout).egress).toMatchObject({ proxy: 'pipelock', pipelock_image: image });

    const started = await h.cli(['--manifest', manifest, 'start', 'pl', '--detach']);
    expect(started.code).toBe(1);
    const identity = started.stdout.split('\n')[0];
    const events = await h.waitForEvent(identity, 'bottle.failed');
    const failure = events.find((e) => e.type === 'effect.failed' && (e.data as { permanent: boolean }).permanent);
    expect((failure!.data as { error: string }).error).toContain(
      `pipelock image ${image} is not on this Docker daemon`,
    );
    const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
    expect(await h.docker.listContainers({ all: true, filters })).toHaveLength(0);
    expect(await h.docker.listNetworks({ filters })).toHaveLength(0);
  });
});
