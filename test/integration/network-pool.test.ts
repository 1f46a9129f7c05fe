import { randomInt } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ensureBottleNetworks, type BottleNetworks } from '../../src/effects/docker/networks.js';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import { effectHandlers } from '../../src/effects/index.js';
import { PermanentEffectError } from '../../src/effects/types.js';
import { mintIdentity } from '../../src/shared/identity.js';
import { LABELS, resourceNames } from '../../src/shared/names.js';
import {
  BOTTLE_SUBNET_PREFIX,
  formatCidr,
  overlaps,
  parseCidr,
  subnetCandidates,
  subnetPool,
  SUBNET_POOL_ENV,
  type Ipv4Cidr,
} from '../../src/shared/subnet-pool.js';
import { testPlan } from '../support/docker.js';
import { heldLaunchSecrets } from '../support/launch-secrets.js';
import { noUploads } from '../support/no-uploads.js';

/**
 * Bottle networks take /29 subnets from CLAUDE_BOTTLE_SUBNET_POOL instead of
 * Docker's default address pools (which run out after ~30 networks). The
 * daemon refuses a subnet that overlaps one it has, and that refusal is what
 * keeps concurrent starts apart. Every test removes the networks it made.
 */
const docker = new Docker();
const identities: string[] = [];
const fillers: string[] = [];

function newIdentity(): string {
  const identity = mintIdentity('pool');
  identities.push(identity);
  return identity;
}

async function labelledNetworks(identity: string): Promise<number> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  return (await docker.listNetworks({ filters })).length;
}

async function removeAll(): Promise<void> {
  const made = identities.splice(0);
  // Side by side: the 40-bottle case leaves 80 networks.
  for (let i = 0; i < made.length; i += 10) {
    await Promise.all(made.slice(i, i + 10).map((id) => removeBottleResources(docker, id).catch(() => undefined)));
  }
  for (const name of fillers.splice(0)) {
    await docker
      .getNetwork(name)
      .remove()
      .catch(() => undefined);
  }
  // Anything a failed removal left is removed once more, one at a time, and reported if it stays.
  const left: string[] = [];
  for (const identity of made) {
    if ((await labelledNetworks(identity)) === 0) continue;
    await removeBottleResources(docker, identity).catch(() => undefined);
    if ((await labelledNetworks(identity)) > 0) left.push(identity);
  }
  if (left.length > 0) throw new Error(`networks of ${left.join(', ')} could not be removed`);
}

afterEach(removeAll);
afterAll(removeAll);

/**
 * Every start's networks, once all of them have settled: a start that fails
 * must not leave others still creating networks after the test cleaned up.
 */
async function allStarted(starts: Array<Promise<BottleNetworks>>): Promise<BottleNetworks[]> {
  const settled = await Promise.allSettled(starts);
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
  expect(failures).toEqual([]);
  return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
}

function subnetsOf(networks: BottleNetworks[]): string[] {
  return networks.flatMap((n) => [n.internal.subnet, n.egress.subnet]);
}

/**
 * A small pool of its own for this run, inside 10.252.0.0/16, away from the
 * default pool other tests use and from any subnet the daemon already has.
 */
async function privatePool(prefix: number): Promise<Ipv4Cidr> {
  const taken = (await docker.listNetworks())
    .flatMap((n) => n.IPAM?.Config ?? [])
    .map((c) => c.Subnet)
    .filter((s): s is string => !!s && !s.includes(':'))
    .map(parseCidr);
  const size = 2 ** (32 - prefix);
  for (;;) {
    const candidate = { base: parseCidr('10.252.0.0/16').base + randomInt(2 ** (prefix - 16)) * size, prefix };
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
}

const firstCandidate = (pool: Ipv4Cidr, network: string): string => subnetCandidates(pool, network).next().value!;

/**
 * `count` identities whose internal networks all try the same subnet first,
 * and so do their egress networks: their candidate orders collide entirely.
 */
function collidingIdentities(pool: Ipv4Cidr, count: number): string[] {
  const firsts = (identity: string) => {
    const names = resourceNames(identity);
    return `${firstCandidate(pool, names.internalNetwork)} ${firstCandidate(pool, names.egressNetwork)}`;
  };
  const found = [mintIdentity('pool')];
  const wanted = firsts(found[0]);
  for (let tries = 0; found.length < count; tries++) {
    if (tries > 100_000) throw new Error(`no identities found whose networks first try ${wanted}`);
    const identity = mintIdentity('pool');
    if (firsts(identity) === wanted) found.push(identity);
  }
  identities.push(...found);
  return found;
}

describe('bottle networks on the subnet pool', () => {
  it.each([
    [2, 27],
    [4, 26],
  ])('%i concurrent starts with colliding candidates fill a /%i pool, no subnet twice', async (bottles, prefix) => {
    const pool = await privatePool(prefix);
    // Exactly room for every network; all internal networks try the same subnet first, as do all egress ones.
    expect(2 ** (BOTTLE_SUBNET_PREFIX - prefix)).toBe(bottles * 2);
    const mine = collidingIdentities(pool, bottles);

    const networks = await allStarted(mine.map((identity) => ensureBottleNetworks(docker, identity, 'pool', pool)));

    const subnets = subnetsOf(networks);
    expect(new Set(subnets).size).toBe(bottles * 2);
    expect(subnets.sort()).toEqual([...subnetCandidates(pool, 'any')].sort());
    // What the daemon holds, not only what was reported.
    for (const net of networks.flatMap((n) => [n.internal, n.egress])) {
      const info = await docker.getNetwork(net.id).inspect();
      expect(info.IPAM?.Config?.map((c) => c.Subnet)).toEqual([net.subnet]);
    }
  });

  it('holds 40 bottles (80 networks, more than the default address pools allow) and frees them all', async () => {
    const pool = subnetPool();
    const t0 = Date.now();
    const networks: BottleNetworks[] = [];
    // Ten starts at a time, as a busy host might see them.
    for (let batch = 0; batch < 4; batch++) {
      const mine = Array.from({ length: 10 }, () => newIdentity());
      const starts = mine.map((identity) => ensureBottleNetworks(docker, identity, 'pool', pool));
      networks.push(...(await allStarted(starts)));
    }
    const created = Date.now() - t0;

    const subnets = subnetsOf(networks);
    expect(subnets).toHaveLength(80);
    expect(new Set(subnets).size).toBe(80);
    for (const subnet of subnets) {
      expect(subnet).toMatch(/\/29$/);
      expect(overlaps(parseCidr(subnet), pool)).toBe(true);
    }

    const made = [...identities];
    const t1 = Date.now();
    await removeAll();
    for (const identity of made) expect(await labelledNetworks(identity)).toBe(0);
    console.log(`80 bottle networks: created in ${created} ms, removed in ${Date.now() - t1} ms`);
  });

  it('a pool with no free subnet fails permanently, naming CLAUDE_BOTTLE_SUBNET_POOL', async () => {
    // A one-network pool that something else already holds.
    const pool = await privatePool(BOTTLE_SUBNET_PREFIX);
    const filler = `cb-pooltest-${mintIdentity('fill')}`;
    await docker.createNetwork({
      Name: filler,
      Internal: true,
      Labels: { 'dev.claude-bottle.test': 'network-pool' },
      IPAM: { Driver: 'default', Config: [{ Subnet: formatCidr(pool) }] },
    });
    fillers.push(filler);
    const identity = newIdentity();

    const attempt = ensureBottleNetworks(docker, identity, 'pool', pool);

    await expect(attempt).rejects.toBeInstanceOf(PermanentEffectError);
    const message = new RegExp(`no free subnet left in .*${formatCidr(pool)}.*${SUBNET_POOL_ENV}`);
    await expect(attempt).rejects.toThrow(message);
    expect(await labelledNetworks(identity)).toBe(0);
  });

  it('a pool smaller than one bottle network fails create_networks permanently, naming the variable', async () => {
    const identity = newIdentity();
    const plan = testPlan(identity);
    const previous = process.env[SUBNET_POOL_ENV];
    process.env[SUBNET_POOL_ENV] = '10.252.0.0/30';
    try {
      const attempt = effectHandlers({ docker }).create_networks(
        { kind: 'create_networks', identity, causedBySeq: 1, params: {} },
        {
          identity,
          plan,
          observe: async () => undefined,
          progress: () => undefined,
          signal: new AbortController().signal,
          lastEgressDecision: 0,
          secrets: heldLaunchSecrets(),
          uploads: noUploads,
        },
      );
      await expect(attempt).rejects.toBeInstanceOf(PermanentEffectError);
      await expect(attempt).rejects.toThrow(new RegExp(`${SUBNET_POOL_ENV}.*smaller than one bottle network`));
    } finally {
      if (previous === undefined) delete process.env[SUBNET_POOL_ENV];
      else process.env[SUBNET_POOL_ENV] = previous;
    }
    expect(await labelledNetworks(identity)).toBe(0);
  });
});
