import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bottleKeys } from '../../src/event-store/keys.js';
import { startClaudeFixture, type ClaudeFixture } from '../support/claude-fixture.js';
import { identityFrom, startHarness, type BottleHarness, type CliResult } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';

/**
 * A credential route's secret (a fresh random string) is used once by the real
 * Claude Code CLI inside a bottle, and then searched for everywhere it must
 * not be: the agent's environment and files, `docker inspect`, the event log
 * (and everything else in Redis), the gateway's decision output, every line
 * the CLI printed, the dry-run plan, and the state folder. Each place is its
 * own assertion; every scan has a control showing it could have found it.
 */
let h: BottleHarness;
let fx: ClaudeFixture;
let identity: string;
let agent: Docker.Container;
const cliOutputs: Array<{ args: string[]; result: CliResult }> = [];
/** Written by the agent into its home: every file scan must find it, or the scan is blind. */
const CONTROL = `control-marker-${Math.random().toString(36).slice(2)}`;

async function cli(args: string[]): Promise<CliResult> {
  const result = await h.cli(['--manifest', fx.manifestPath, ...args], { env: fx.env });
  cliOutputs.push({ args, result });
  return result;
}

beforeAll(async () => {
  h = await startHarness();
  fx = await startClaudeFixture(h, {
    agents: [{ name: 'keeper', command: ['sleep', '600'] }],
    reply: 'Secret-free greetings.',
  });
  expect(fx.secret.length).toBeGreaterThan(30);
}, 60_000);

afterAll(async () => {
  await fx?.close();
  await h?.cleanup();
});

function countIn(haystack: Buffer | string, needle: string): number {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  return text.split(needle).length - 1;
}

/** Streams `docker cp`'s tar of the whole container filesystem and counts occurrences across chunk borders. */
async function scanArchive(container: Docker.Container, needles: string[]): Promise<Record<string, number>> {
  const stream = (await container.getArchive({ path: '/' })) as unknown as NodeJS.ReadableStream;
  const counts = Object.fromEntries(needles.map((n) => [n, 0]));
  const keep = Math.max(...needles.map((n) => n.length)) - 1;
  let carry = '';
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      const text = carry + chunk.toString('latin1');
      for (const n of needles) counts[n] += countIn(text, n);
      // Keep a tail shorter than any needle, so a match across the border is counted once.
      carry = text.slice(-keep);
    });
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return counts;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((rel) => join(dir, rel))
    .filter((p) => statSync(p).isFile());
}

describe('the credential secret appears nowhere but the gateway', () => {
  it('dry-run plan (json and text) does not contain it', async () => {
    const json = await cli(['start', fx.agent, '--dry-run', '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ agent: 'keeper' });
    expect(json.stdout + json.stderr).not.toContain(fx.secret);
    const text = await cli(['start', fx.agent, '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('keeper');
    expect(text.stdout + text.stderr).not.toContain(fx.secret);
  });

  it('the bottle starts; its sealed secrets are gone from Redis once the gateway holds them', async () => {
    identity = identityFrom(await cli(['start', fx.agent, '--detach']));
    const events = await h.waitForEvent(identity, 'agent.started');
    expect(events.map((e) => e.type)).toContain('gateway.started');
    expect(existsSync(join(h.home, 'state', identity))).toBe(true);
    const redis = new Redis({ path: h.redis.socket, maxRetriesPerRequest: null });
    try {
      expect(await redis.exists(`cb:sealed:${identity}`)).toBe(0);
    } finally {
      redis.disconnect();
    }
    agent = h.docker.getContainer(`cb-${identity}-agent`);
  });

  it('the real Claude Code uses the secret once (through the gateway), so there is something to leak', async () => {
    const run = await execIn(
      agent,
      ['sh', '-c', `printf %s ${CONTROL} > /home/node/control.txt && claude -p 'say hi'`],
      { user: 'node' },
    );
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('Secret-free greetings.');
    expect(fx.fake.requests.length).toBeGreaterThan(0);
    expect(fx.fake.requests.every((r) => r.headers.authorization === `Bearer ${fx.secret}`)).toBe(true);
  });

  it('not in the agent environment (env as the agent user, and PID 1 environment)', async () => {
    const env = await execIn(agent, ['env'], { user: 'node' });
    expect(env.code).toBe(0);
    expect(env.output).toContain('CLAUDE_CODE_OAUTH_TOKEN=');
    expect(env.output).not.toContain(fx.secret);
    const pid1 = await execIn(agent, ['cat', '/proc/1/environ'], { user: 'node' });
    expect(pid1.output).toContain('ANTHROPIC_BASE_URL=');
    expect(pid1.output).not.toContain(fx.secret);
  });

  it('not in any agent container file (grep as root and node inside; whole filesystem archive outside)', async () => {
    for (const user of ['root', 'node']) {
      // grep exits 1 when nothing matched; the control marker shows the search reads the agent's own files.
      const search = await execIn(
        agent,
        ['grep', '-rlsF', '--exclude-dir=proc', '--exclude-dir=sys', '-e', fx.secret, '-e', CONTROL, '/'],
        { user },
      );
      const hits = search.output.trim().split('\n').filter(Boolean);
      expect(hits, user).toEqual(['/home/node/control.txt']);
    }
    const counts = await scanArchive(agent, [fx.secret, CONTROL]);
    expect(counts[CONTROL]).toBeGreaterThan(0);
    expect(counts[fx.secret]).toBe(0);
  }, 180_000);

  it('not in docker inspect of the agent (nor of the gateway: its secret is in a file, not its config)', async () => {
    const agentInfo = JSON.stringify(await agent.inspect());
    expect(agentInfo).toContain('CLAUDE_CODE_OAUTH_TOKEN');
    expect(agentInfo).not.toContain(fx.secret);
    const gatewayInfo = JSON.stringify(await h.docker.getContainer(`cb-${identity}-gateway`).inspect());
    expect(gatewayInfo).not.toContain(fx.secret);
  });

  it("not in the gateway's decision output (its container logs)", async () => {
    const logs = (await h.docker
      .getContainer(`cb-${identity}-gateway`)
      .logs({ stdout: true, stderr: true })) as unknown as Buffer;
    const text = logs.toString('utf8');
    // The decision for Claude Code's request is there, so this is the right output.
    expect(text).toContain('credential_route');
    expect(text).not.toContain(fx.secret);
  });

  it('not in the event log (the whole stream) nor anywhere else in Redis', async () => {
    const stopped = await cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
    await h.waitForEvent(identity, 'bottle.preserved');
    const redis = new Redis({ path: h.redis.socket, maxRetriesPerRequest: null });
    try {
      const stream = await redis.xrange(bottleKeys(identity).events, '-', '+');
      expect(stream.length).toBeGreaterThan(5);
      const streamText = JSON.stringify(stream);
      expect(streamText).toContain('egress.allowed');
      expect(streamText).not.toContain(fx.secret);
      // Queues, job payloads (which carry the plan), live state caches: every value of every key.
      const keys = await redis.keys('*');
      expect(keys.length).toBeGreaterThan(1);
      for (const key of keys) {
        const dumped = await redis.dumpBuffer(key);
        expect(dumped?.toString('latin1') ?? '', key).not.toContain(fx.secret);
      }
    } finally {
      redis.disconnect();
    }
    const events = await cli(['events', identity, '--format', 'json']);
    expect(events.code).toBe(0);
    expect(events.stdout).not.toContain(fx.secret);
  });

  it('not in the state folder (transcript snapshot, metadata) nor in the worker log', async () => {
    const files = filesUnder(join(h.home, 'state', identity));
    expect(files.some((f) => f.includes('transcript'))).toBe(true);
    for (const f of files) expect(readFileSync(f).toString('latin1'), f).not.toContain(fx.secret);
    const workerLog = join(h.home, 'worker', 'worker.log');
    expect(existsSync(workerLog)).toBe(true);
    expect(readFileSync(workerLog, 'utf8')).not.toContain(fx.secret);
  });

  it('not in any CLI output (stdout and stderr of every call above)', async () => {
    const listed = await cli(['list', '--all', '--format', 'json']);
    expect(listed.stdout).toContain(identity);
    expect(cliOutputs.length).toBeGreaterThanOrEqual(6);
    for (const { args, result } of cliOutputs) {
      expect(result.stdout, args.join(' ')).not.toContain(fx.secret);
      expect(result.stderr, args.join(' ')).not.toContain(fx.secret);
    }
  });
});
