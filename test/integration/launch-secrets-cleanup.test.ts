import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectHandlers } from '../../src/effects/index.js';
import type { EffectContext, EffectHandler, LaunchSecrets } from '../../src/effects/types.js';
import type { EffectKind, EffectParams, EffectRequest } from '../../src/machines/effects.js';
import { PIN_DEFAULT_HOSTS, identityFrom, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { testDocker, testIdentity, testPlan } from '../support/docker.js';
import { heldLaunchSecrets, redisKeysHolding } from '../support/launch-secrets.js';
import { noUploads } from '../support/no-uploads.js';

/**
 * The CLI seals a launch's route secrets to the host's key and sends them in
 * the command; they wait in Redis, as ciphertext, for the gateway effect,
 * which drops them once the gateway holds them. A launch can end without that
 * effect ever running: every way out drops them too.
 */

const SECRET = 'sk-test-launch-secret-0123456789';

describe('the effects that end a launch', () => {
  const handlers = effectHandlers({ docker: testDocker() });
  let home: string;
  let previousHome: string | undefined;

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'cb-secrets-'));
    previousHome = process.env.CLAUDE_BOTTLE_HOME;
    process.env.CLAUDE_BOTTLE_HOME = home;
  });
  afterAll(() => {
    if (previousHome === undefined) delete process.env.CLAUDE_BOTTLE_HOME;
    else process.env.CLAUDE_BOTTLE_HOME = previousHome;
    rmSync(home, { recursive: true, force: true });
  });

  function run<K extends EffectKind>(kind: K, identity: string, params: EffectParams<K>, secrets: LaunchSecrets) {
    const plan = testPlan(identity);
    const ctx: EffectContext = {
      identity,
      plan,
      observe: async () => undefined,
      progress: () => undefined,
      signal: new AbortController().signal,
      lastEgressDecision: 0,
      secrets,
      uploads: noUploads,
    };
    return (handlers[kind] as EffectHandler<K>)({ kind, identity, causedBySeq: 1, params } as EffectRequest<K>, ctx);
  }

  it.each([
    ['preserve', { reason: 'stopped' }],
    ['teardown_failed', { effect: 'build_image', error: 'boom' }],
    ['cleanup', {}],
  ] as const)('%s drops secrets no gateway took', async (kind, params) => {
    const identity = testIdentity('sec');
    const secrets = heldLaunchSecrets({ anthropic: SECRET });
    await run(kind, identity, params as never, secrets);
    expect(secrets.discarded).toBe(true);
    expect(await secrets.open()).toBeUndefined();
  });
});

describe('a launch that fails before its gateway starts', () => {
  let h: BottleHarness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  it('leaves no secret in Redis or on disk (a failing image build)', async () => {
    const manifest = h.writeManifest(
      {
        bottles: [
          {
            name: 'broken',
            dockerfile: './broken/Dockerfile',
            extra_hosts: PIN_DEFAULT_HOSTS,
            cred_proxy: {
              routes: [{ role: 'anthropic-base-url', token_env: 'CB_TEST_LAUNCH_TOKEN', auth: 'api-key' }],
            },
          },
        ],
        agents: [{ name: 'broke', bottle: 'broken', command: ['sleep', '600'] }],
      },
      { 'broken/Dockerfile': 'FROM debian:bookworm-slim\nRUN echo cannot build && exit 3\n' },
    );
    const cwd = mkdtempSync(join(tmpdir(), 'cb-secrets-cwd-'));
    try {
      const started = await h.cli(['--manifest', manifest, 'start', 'broke', '--detach', '--cwd', cwd], {
        env: { CB_TEST_LAUNCH_TOKEN: SECRET },
      });
      const identity = identityFrom(started);
      const events = await h.waitForEvent(identity, 'bottle.failed');
      expect(events.some((e) => e.type === 'gateway.started')).toBe(false);
      expect(existsSync(join(h.home, 'state', identity))).toBe(true);
      const redis = new Redis({ path: h.redis.socket });
      try {
        expect(await redis.exists(`cb:sealed:${identity}`)).toBe(0);
        expect(await redisKeysHolding(redis, SECRET)).toEqual([]);
      } finally {
        redis.disconnect();
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
