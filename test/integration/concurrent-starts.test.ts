import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../../src/shared/names.js';
import { liveWorkers } from '../../src/engine/workers.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * Random identities exist so that simultaneous starts of the same agent in the
 * same folder never collide: ten `start --detach` at once give ten bottles,
 * each with its own containers, networks and state folder, all running, and
 * one local worker between them (not one per CLI).
 */

const N = 10;
let h: BottleHarness;
let manifest: string;
let redis: Redis;
let cwd: string;

beforeAll(async () => {
  h = await startHarness();
  // Tiny agent, stoppable by SIGTERM (PID 1 ignores signals it does not trap).
  manifest = h.writeManifest({
    bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'twin', bottle: 'box', command: ['bash', '-c', 'trap "exit 143" TERM; sleep 600 & wait'] }],
  });
  redis = h.redis.connect();
  cwd = mkdtempSync(join(tmpdir(), 'cb-concurrent-cwd-'));
});
afterAll(async () => {
  redis?.disconnect();
  await h?.cleanup();
  rmSync(cwd, { recursive: true, force: true });
});

describe('concurrent starts', () => {
  it(`${N} concurrent starts, one folder: ${N} distinct running bottles (networks, state), one worker`, async () => {
    const results = await Promise.all(
      Array.from({ length: N }, () =>
        h.cli(['--manifest', manifest, 'start', 'twin', '--detach', '--cwd', cwd], { timeoutMs: 300_000 }),
      ),
    );
    for (const r of results) expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
    const identities = results.map(identityFrom);
    expect(new Set(identities).size).toBe(N);

    const runs = await Promise.all(identities.map((id) => h.waitForEvent(id, 'agent.started', 240_000)));
    for (const events of runs) expect(events.some((e) => e.type === 'bottle.failed')).toBe(false);

    const labelled = JSON.stringify({ label: [LABELS.identity] });
    const containers = (await h.docker.listContainers({ filters: labelled })).filter((c) =>
      identities.includes(c.Labels[LABELS.identity]),
    );
    const agents = containers.filter((c) => c.Names.some((n) => n.endsWith('-agent')));
    expect(agents).toHaveLength(N);
    expect(new Set(agents.map((c) => c.Labels[LABELS.identity])).size).toBe(N);
    for (const c of agents) expect(c.State).toBe('running');
    const networks = (await h.docker.listNetworks({ filters: labelled })).filter((n) =>
      identities.includes(n.Labels?.[LABELS.identity] ?? ''),
    );
    expect(new Set(networks.map((n) => n.Name)).size).toBe(2 * N);
    for (const id of identities) {
      expect(existsSync(join(h.home, 'state', id, 'metadata.json'))).toBe(true);
      const bind = (await h.docker.getContainer(`cb-${id}-agent`).inspect()).Mounts.find((m) => m.Destination === cwd);
      expect(bind?.Source).toBe(cwd);
    }
    const listed = JSON.parse((await h.cli(['list', '--format', 'json'])).stdout) as Array<{
      identity: string;
      state: string;
    }>;
    for (const id of identities)
      expect(listed).toContainEqual(expect.objectContaining({ identity: id, state: 'running' }));
    // The ten CLIs raced to start the local worker; exactly one did.
    expect(await liveWorkers(redis)).toHaveLength(1);

    const stops = await Promise.all(identities.map((id) => h.cli(['stop', id], { timeoutMs: 180_000 })));
    for (const s of stops) expect(s.code, s.stderr).toBe(0);
    for (const id of identities) {
      await h.waitForEvent(id, 'bottle.preserved');
      expect(existsSync(join(h.home, 'state', id, '.preserve'))).toBe(true);
    }
    const left = (await h.docker.listContainers({ all: true, filters: labelled })).filter((c) =>
      identities.includes(c.Labels[LABELS.identity]),
    );
    expect(left).toHaveLength(0);
  }, 600_000);
});
