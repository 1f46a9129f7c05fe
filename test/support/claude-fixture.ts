import { randomBytes } from 'node:crypto';
import type { BottleHarness } from './cli-harness.js';
import { PIN_DEFAULT_HOSTS } from './cli-harness.js';
import { startFakeAnthropic, type FakeAnthropic, type FakeAnthropicOptions } from './fake-anthropic.js';

/**
 * Runs the REAL Claude Code CLI in a bottle against a local fake Messages API.
 *
 *   const fx = await startClaudeFixture(h);
 *   const run = await h.cli(['--manifest', fx.manifestPath, 'start', fx.agent, '--', '-p', 'say hi'], { env: fx.env });
 *   // run.stdout contains fx.reply; fx.fake.requests holds what Claude Code sent
 *   await fx.close();
 *
 * How the traffic flows: the bottle's anthropic-base-url route points at
 * `http://fake-anthropic.test:<port>`, and `extra_hosts` maps that name to
 * `host-gateway` (the egress bridge's gateway address, i.e. this host), where
 * the fake listens on 0.0.0.0. The agent gets ANTHROPIC_BASE_URL = the
 * gateway's credential port and a placeholder token; the gateway swaps in the
 * real secret (`secret`, passed to the CLI as TEST_ANTHROPIC_TOKEN in `env`).
 * PIN_DEFAULT_HOSTS keeps every default Anthropic host on this host too, so
 * nothing can reach the internet.
 *
 * What `claude -p` sends (Claude Code 2.1.x, with the bottle's agent
 * environment, which disables non-essential traffic): exactly one
 * `POST /v1/messages?beta=true` with `"stream": true`, answered by the fake as
 * server-sent events.
 */

/** The env var the manifest's route reads its secret from (host side). */
export const TEST_TOKEN_ENV = 'TEST_ANTHROPIC_TOKEN';
export const FAKE_ANTHROPIC_HOST = 'fake-anthropic.test';
export const DEFAULT_REPLY = 'Hello from the fake Anthropic API, through the bottle.';

export interface ClaudeFixtureAgent {
  name: string;
  /** Default ['claude']. */
  command?: string[];
  prompt?: string;
  skills?: string[];
  copy_cwd?: boolean;
}

export interface ClaudeFixtureOptions {
  /** `oauth` (Authorization: Bearer, default) or `api-key` (x-api-key). */
  auth?: 'oauth' | 'api-key';
  /** The fake's reply text (default DEFAULT_REPLY). */
  reply?: string;
  /** Further options for the fake (event delay, holding streams). */
  fake?: Omit<FakeAnthropicOptions, 'reply' | 'host'>;
  /** Bottle name (default "claude"). */
  bottle?: string;
  /** Agents in the manifest (default one agent "claude" running ["claude"]). The first is `agent`. */
  agents?: ClaudeFixtureAgent[];
  /** Extra egress.allow entries. */
  allow?: string[];
  /** Extra extra_hosts entries (merged over the fake's name and PIN_DEFAULT_HOSTS). */
  extraHosts?: Record<string, string>;
  /** Files written next to the manifest (e.g. prompts), as for h.writeManifest. */
  files?: Record<string, string>;
  /** The bottle's `limits` (e.g. `{ budget: { tokens: 1000 } }`). */
  limits?: Record<string, unknown>;
}

export interface ClaudeFixture {
  fake: FakeAnthropic;
  manifestPath: string;
  /** The manifest object written to manifestPath. */
  manifest: { bottles: unknown[]; agents: ClaudeFixtureAgent[] };
  /** The first agent's name (default "claude"). */
  agent: string;
  /** The fake's reply text: what `claude -p` prints. */
  reply: string;
  /** The real credential: a fresh random string only the host and the gateway should ever hold. */
  secret: string;
  /** Pass as `h.cli(args, { env })`: holds TEST_ANTHROPIC_TOKEN=<secret>. */
  env: NodeJS.ProcessEnv;
  /** Stops the fake (the harness's cleanup removes the bottles). */
  close(): Promise<void>;
}

export async function startClaudeFixture(h: BottleHarness, opts: ClaudeFixtureOptions = {}): Promise<ClaudeFixture> {
  const reply = opts.reply ?? DEFAULT_REPLY;
  // The gateway reaches this host on its egress bridge's gateway address, which is not loopback.
  const fake = await startFakeAnthropic({ ...opts.fake, reply, host: '0.0.0.0' });
  const secret = `sk-test-${randomBytes(18).toString('hex')}`;
  const bottle = opts.bottle ?? 'claude';
  const agents = (opts.agents ?? [{ name: 'claude' }]).map((a) => ({ ...a, bottle, command: a.command ?? ['claude'] }));
  const manifest = {
    bottles: [
      {
        name: bottle,
        egress: { allow: opts.allow ?? [] },
        cred_proxy: {
          routes: [
            {
              role: 'anthropic-base-url',
              upstream: `http://${FAKE_ANTHROPIC_HOST}:${fake.port}`,
              token_env: TEST_TOKEN_ENV,
              auth: opts.auth ?? 'oauth',
            },
          ],
        },
        extra_hosts: { ...PIN_DEFAULT_HOSTS, [FAKE_ANTHROPIC_HOST]: 'host-gateway', ...opts.extraHosts },
        ...(opts.limits ? { limits: opts.limits } : {}),
      },
    ],
    agents,
  };
  const manifestPath = h.writeManifest(manifest, opts.files);
  return {
    fake,
    manifestPath,
    manifest,
    agent: agents[0].name,
    reply,
    secret,
    env: { [TEST_TOKEN_ENV]: secret },
    close: () => fake.close(),
  };
}
