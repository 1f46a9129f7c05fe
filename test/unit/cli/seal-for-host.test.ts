import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostKeyChanged, readKnownHosts } from '../../../src/cli/known-hosts.js';
import { checkHostKeyBeforeLaunch, sealForHost } from '../../../src/cli/secrets.js';
import type { BottlePlan } from '../../../src/plan/schema.js';
import { generateHostKeyPair, hostKeyId, openSealedSecrets } from '../../../src/shared/sealed-secrets.js';

const SECRETS = { 'route-0': 'sk-test-pinned-0123456789' };
const plan = { identity: 'claude-bottle-demo-1a2b3c', host: 'host-a' } as BottlePlan;
const genuine = generateHostKeyPair();
const attacker = generateHostKeyPair();

let home: string;
let env: NodeJS.ProcessEnv;
let published: string | undefined;
let reads: number;
/** Redis as far as sealing reads it: the key a host publishes. */
const redis = {
  get: (name: string) => {
    reads += 1;
    return Promise.resolve(name === `cb:host-key:${plan.host}` ? (published ?? null) : null);
  },
} as unknown as Redis;

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'cb-seal-pin-'));
  env = { CLAUDE_BOTTLE_HOME: home };
  published = genuine.publicKey;
  reads = 0;
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe('sealing to a pinned host key', () => {
  it('pins on the first seal, and the blob opens with the genuine key', async () => {
    const blob = await sealForHost(redis, plan, SECRETS, env);
    expect(readKnownHosts(join(home, 'known-hosts')).get('host-a')?.keyId).toBe(hostKeyId(genuine.publicKey));
    expect(openSealedSecrets(blob!, { identity: plan.identity, host: plan.host, keys: genuine })).toEqual(SECRETS);
  });

  it('refuses a key swapped in Redis before sealing anything, at the check before launch and at the seal', async () => {
    await sealForHost(redis, plan, SECRETS, env);
    published = attacker.publicKey;
    await expect(checkHostKeyBeforeLaunch(redis, plan, SECRETS, env)).rejects.toBeInstanceOf(HostKeyChanged);
    await expect(sealForHost(redis, plan, SECRETS, env)).rejects.toThrow(
      `host host-a now publishes key ${hostKeyId(attacker.publicKey)}, ` +
        `not the pinned key ${hostKeyId(genuine.publicKey)}`,
    );
  });

  it('reads no key for a bottle without secrets, so a changed key costs it nothing', async () => {
    published = attacker.publicKey;
    await checkHostKeyBeforeLaunch(redis, plan, {}, env);
    expect(await sealForHost(redis, plan, {}, env)).toBeUndefined();
    expect(reads).toBe(0);
  });
});
