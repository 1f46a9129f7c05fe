import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBottleNetworks, isAddressPoolExhausted } from '../../src/effects/docker/networks.js';
import { removeBottleResources } from '../../src/effects/docker/teardown.js';
import { PermanentEffectError } from '../../src/effects/types.js';
import { mintIdentity } from '../../src/shared/identity.js';

/**
 * Docker's default address pools run out after ~30 bridge networks. A bottle
 * that hits the limit fails at once with the cause and the fix, instead of
 * retrying something that cannot succeed until a network goes away. The test
 * fills the pools with its own labelled networks and removes them all.
 */
const docker = new Docker();
const suffix = randomBytes(3).toString('hex');
const filler: string[] = [];
const identity = mintIdentity('pool');

afterAll(async () => {
  await removeBottleResources(docker, identity).catch(() => undefined);
  for (const name of filler) await docker.getNetwork(name).remove().catch(() => undefined);
});

describe('network address pools', () => {
  it('a bottle that finds no free pool fails permanently, naming the cause and the fix', async (ctx) => {
    let exhausted = false;
    for (let i = 0; i < 128; i++) {
      const name = `cb-pooltest-${suffix}-${i}`;
      try {
        await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: true, Labels: { 'dev.claude-bottle.test': 'network-pool' } });
        filler.push(name);
      } catch (err) {
        expect(isAddressPoolExhausted(err), String(err)).toBe(true);
        exhausted = true;
        break;
      }
    }
    // A daemon configured with larger default-address-pools never runs out here.
    if (!exhausted) ctx.skip('this daemon still had free address pools after 128 networks; the exhaustion path was not reached');
    const attempt = ensureBottleNetworks(docker, identity, 'pool');
    await expect(attempt).rejects.toBeInstanceOf(PermanentEffectError);
    await expect(attempt).rejects.toThrow(/no free address pool left for a new network \(each bottle uses 2\).*default-address-pools/);
  });
});
