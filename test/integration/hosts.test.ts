import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListedHost } from '../../src/cli/commands/hosts.js';
import { generateHostKeyPair, hostKeyId } from '../../src/shared/sealed-secrets.js';
import { loadOrCreateHostKey } from '../../src/worker/host-key.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { TestWorkers, until } from '../support/workers.js';

/**
 * A worker serves one Docker host under a host id and says so in its
 * heartbeat; `bottle hosts` lists the live ones from Redis alone.
 */

let h: BottleHarness;
const workers = new TestWorkers(() => h);
const hostId = `cb-test-host-${randomBytes(3).toString('hex')}`;

async function listedHosts(): Promise<ListedHost[]> {
  const res = await h.cli(['hosts', '--format', 'json']);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as ListedHost[];
}

beforeAll(async () => {
  h = await startHarness();
}, 120_000);

afterAll(async () => {
  await workers.stopAll();
  await h?.cleanup();
});

describe('bottle hosts', () => {
  it('says so when no worker is alive', async () => {
    expect(await listedHosts()).toEqual([]);
    expect((await h.cli(['hosts'])).stdout).toMatch(/^no live worker host/);
  });

  it("lists a worker's host id, its engine's id, build, bottles and capacity", async () => {
    const worker = workers.start(hostId);
    const hosts = await until(`worker --host ${hostId} in bottle hosts`, async () => {
      const listed = await listedHosts();
      return listed.some((x) => x.id === hostId) && listed;
    });
    const engine = ((await h.docker.info()) as { ID: string }).ID;
    const keyId = hostKeyId(loadOrCreateHostKey(hostId, h.env).publicKey);
    expect(hosts).toEqual([
      {
        id: hostId,
        engine,
        builds: [expect.any(String)],
        workers: 1,
        bottles: 0,
        capacity: expect.any(Number),
        keys: [keyId],
        published: keyId,
        pinned: null,
      },
    ]);
    expect(hosts[0].capacity).toBeGreaterThan(0);
    const text = (await h.cli(['hosts'])).stdout.split('\n');
    expect(text[0]).toMatch(/^HOST\s+ENGINE\s+BUILD\s+WORKERS\s+BOTTLES\s+KEY\s+PINNED$/);
    expect(text[1]).toMatch(new RegExp(`^${hostId}\\s+${engine}\\s+\\S+\\s+1\\s+0/\\d+\\s+${keyId}\\s+no$`));
    const doctor = await h.cli(['doctor']);
    expect(doctor.stdout).toContain(`host ${hostId} (pid ${worker.pid}`);
  }, 120_000);

  it('counts the bottles the host runs while they run', async () => {
    const manifest = h.writeManifest({
      bottles: [{ name: 'box', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: 'sleeper', bottle: 'box', command: ['sleep', '600'] }],
    });
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'agent.started');
    const deadline = Date.now() + 30_000;
    while ((await listedHosts()).find((x) => x.id === hostId)?.bottles !== 1) {
      if (Date.now() > deadline) throw new Error('the running bottle was never counted');
      await new Promise((r) => setTimeout(r, 300));
    }
    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
  }, 120_000);

  it("--trust pins the key a host publishes only when given that key's id; a swapped key shows CHANGED", async () => {
    const keyId = hostKeyId(loadOrCreateHostKey(hostId, h.env).publicKey);
    const knownHosts = join(h.home, 'known-hosts');
    const bare = await h.cli(['hosts', '--trust', hostId]);
    expect(bare.code).toBe(2);
    expect(bare.stdout.trim()).toBe(`host ${hostId}: pinned key none, published key ${keyId}`);
    expect(bare.stderr.trim().split('\n')).toHaveLength(1);
    expect(bare.stderr).toContain(`\`bottle hosts --trust ${hostId} --key ${keyId}\``);
    const wrong = await h.cli(['hosts', '--trust', hostId, '--key', '0123456789abcdef']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`host ${hostId} publishes key ${keyId}, not 0123456789abcdef: nothing was pinned`);
    expect(existsSync(knownHosts)).toBe(false);

    const trusted = await h.cli(['hosts', '--trust', hostId, '--key', keyId]);
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(trusted.stdout).toContain(`host ${hostId}: key ${keyId} pinned in ${knownHosts}`);
    expect(statSync(knownHosts).mode & 0o777).toBe(0o600);
    expect((await listedHosts()).find((x) => x.id === hostId)).toMatchObject({ published: keyId, pinned: keyId });
    expect((await h.cli(['hosts'])).stdout.split('\n')[1]).toMatch(/\syes$/);

    const redis = h.redis.connect();
    try {
      const genuine = (await redis.get(`cb:host-key:${hostId}`))!;
      const swapped = generateHostKeyPair().publicKey;
      await redis.set(`cb:host-key:${hostId}`, swapped);
      expect((await h.cli(['hosts'])).stdout.split('\n')[1]).toMatch(new RegExp(`\\sCHANGED from ${keyId}$`));
      expect((await listedHosts()).find((x) => x.id === hostId)).toMatchObject({
        published: hostKeyId(swapped),
        pinned: keyId,
      });
      await redis.set(`cb:host-key:${hostId}`, genuine);
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it('refuses a host id that is not a name, with exit 2 and one line', async () => {
    const res = await h.cli(['worker', '--host', 'bad host!']);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/--host must be/);
  });
});
