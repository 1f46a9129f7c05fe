import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectHandlers } from '../../src/effects/index.js';
import { handOverGatewaySecrets, writeGatewaySecrets } from '../../src/effects/state.js';
import type { EffectContext, EffectHandler } from '../../src/effects/types.js';
import type { EffectKind, EffectParams, EffectRequest } from '../../src/machines/effects.js';
import { statePaths } from '../../src/shared/paths.js';
import { PIN_DEFAULT_HOSTS, identityFrom, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { testDocker, testIdentity, testPlan } from '../support/docker.js';

/**
 * The CLI writes a launch's route secrets to state/<id>/secrets.json for the
 * gateway effect, which deletes the file once the gateway holds them. A
 * launch can end without that effect ever running: every way out removes the
 * file.
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

  function run<K extends EffectKind>(kind: K, identity: string, params: EffectParams<K>) {
    const plan = testPlan(identity);
    const ctx: EffectContext = {
      identity,
      plan,
      observe: async () => undefined,
      progress: () => undefined,
      signal: new AbortController().signal,
      lastEgressDecision: 0,
    };
    return (handlers[kind] as EffectHandler<K>)({ kind, identity, causedBySeq: 1, params } as EffectRequest<K>, ctx);
  }

  it.each([
    ['preserve', { reason: 'stopped' }],
    ['teardown_failed', { effect: 'build_image', error: 'boom' }],
    ['cleanup', {}],
  ] as const)('%s deletes secrets no gateway took', async (kind, params) => {
    const identity = testIdentity('sec');
    writeGatewaySecrets(identity, { anthropic: SECRET });
    expect(existsSync(statePaths(identity).secrets)).toBe(true);
    await run(kind, identity, params as never);
    expect(existsSync(statePaths(identity).secrets)).toBe(false);
  });

  it('a command that could not be sent takes its secrets back', async () => {
    const identity = testIdentity('sec');
    const send = async () => {
      expect(existsSync(statePaths(identity).secrets)).toBe(true);
      throw new Error('Redis went away');
    };
    await expect(handOverGatewaySecrets(identity, { anthropic: SECRET }, send)).rejects.toThrow('Redis went away');
    expect(existsSync(statePaths(identity).secrets)).toBe(false);
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

  it('leaves no secrets file (a failing image build)', async () => {
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
      expect(existsSync(join(h.home, 'state', identity, 'secrets.json'))).toBe(false);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
