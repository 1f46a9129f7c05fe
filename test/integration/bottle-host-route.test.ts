import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { show } from '../support/workers.js';
import { execIn } from '../support/docker.js';
import { redisKeysHolding } from '../support/launch-secrets.js';

/**
 * A host credential route used the way tools use it: plain `curl https://…`
 * through HTTPS_PROXY. The gateway terminates that TLS with its per-run CA
 * (which the agent was given to trust), injects the real token, and forwards
 * to the route's upstream — here a stand-in HTTP server on this host, reached
 * through `extra_hosts` (`api.routed.test` -> host-gateway). The agent never
 * holds the token.
 */
const ROUTED_HOST = 'api.routed.test';
const TOKEN_ENV = 'TEST_ROUTE_TOKEN';

let h: BottleHarness;
let upstream: Server;
let upstreamPort: number;
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

beforeAll(async () => {
  h = await startHarness();
  upstream = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.end(`routed upstream saw ${req.method} ${req.url}\n`);
  });
  // The gateway reaches this host on its egress bridge's gateway address, not loopback.
  await new Promise<void>((resolve) => upstream.listen(0, '0.0.0.0', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  await h?.cleanup();
});

function manifestWith(command: string[]): string {
  return h.writeManifest({
    bottles: [
      {
        name: 'routed',
        cred_proxy: {
          routes: [
            {
              host: ROUTED_HOST,
              upstream: `http://${ROUTED_HOST}:${upstreamPort}`,
              token_env: TOKEN_ENV,
              auth: 'bearer',
            },
          ],
        },
        extra_hosts: { ...PIN_DEFAULT_HOSTS, [ROUTED_HOST]: 'host-gateway' },
      },
    ],
    agents: [{ name: 'router', bottle: 'routed', command }],
  });
}

describe('a host credential route over HTTPS', () => {
  it('curl https://<route host> gets the real token injected; agent trusts gateway CA, holds no token', async () => {
    const secret = `ghp_${randomBytes(16).toString('hex')}`;
    const script = [
      // The agent's own (placeholder) credential is replaced, not forwarded.
      `curl -sS --fail -H 'Authorization: Bearer placeholder' https://${ROUTED_HOST}/user/repos?page=2`,
      // Every other HTTPS host still gets an end-to-end tunnel, and an unlisted one a refusal.
      `curl -sS -o /dev/null -w 'other: %{http_connect}\\n' https://unlisted.test/ || true`,
    ].join('; ');
    const run = await h.cli(['--manifest', manifestWith(['bash', '-c', script]), 'start', 'router'], {
      env: { [TOKEN_ENV]: secret },
    });
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout).toContain('routed upstream saw GET /user/repos?page=2');
    expect(run.stdout).toContain('other: 403');
    expect(seen.at(-1)).toMatchObject({
      url: '/user/repos?page=2',
      headers: { authorization: `Bearer ${secret}`, host: `${ROUTED_HOST}:${upstreamPort}` },
    });

    const identity = /bottle ([a-z0-9_-]+-[0-9a-z]{5}): starting/.exec(run.stderr)?.[1];
    expect(identity, run.stderr).toBeDefined();
    const events = await h.log.read(identity!);
    expect(events.filter((e) => e.type === 'egress.allowed').map((e) => e.data)).toContainEqual(
      expect.objectContaining({ host: ROUTED_HOST, method: 'GET', reason: 'credential_route' }),
    );
    expect(events.filter((e) => e.type === 'egress.denied').map((e) => e.data)).toContainEqual(
      expect.objectContaining({ host: 'unlisted.test', reason: 'not_in_allowlist' }),
    );
    expect(JSON.stringify(events)).not.toContain(secret);
    expect(run.stdout + run.stderr).not.toContain(secret);

    // The secret travelled sealed inside the command job: never plaintext in Redis or on any disk.
    const redis = new Redis({ path: h.redis.socket });
    try {
      expect(await redisKeysHolding(redis, secret)).toEqual([]);
      expect(await redisKeysHolding(redis, 'ephemeral_key')).not.toEqual([]);
    } finally {
      redis.disconnect();
    }
    const grep = spawnSync('grep', ['-rlF', secret, h.home], { encoding: 'utf8' });
    expect(grep.stdout).toBe('');
    const hostKeys = readdirSync(join(h.home, 'host-keys'));
    expect(hostKeys).toHaveLength(1);
    expect(statSync(join(h.home, 'host-keys', hostKeys[0])).mode & 0o777).toBe(0o600);
  });

  it('the running agent has the trust settings and CA files, and no token anywhere in its environment', async () => {
    const secret = `ghp_${randomBytes(16).toString('hex')}`;
    const started = await h.cli(['--manifest', manifestWith(['sleep', '600']), 'start', 'router', '--detach'], {
      env: { [TOKEN_ENV]: secret },
    });
    expect(started.code, show(started)).toBe(0);
    const identity = identityFrom(started);
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    const env = (await agent.inspect()).Config.Env ?? [];
    expect(env).toEqual(
      expect.arrayContaining([
        'NODE_EXTRA_CA_CERTS=/home/node/.claude-bottle/gateway-ca.pem',
        'SSL_CERT_FILE=/home/node/.claude-bottle/ca-certificates.pem',
        'CURL_CA_BUNDLE=/home/node/.claude-bottle/ca-certificates.pem',
        'GIT_SSL_CAINFO=/home/node/.claude-bottle/ca-certificates.pem',
      ]),
    );
    expect(env.join('\n')).not.toContain(secret);

    const ca = await execIn(agent, ['cat', '/home/node/.claude-bottle/gateway-ca.pem'], { user: 'node' });
    expect(ca.output).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // The bundle keeps the image's own roots (other hosts still verify) and adds the gateway CA last.
    const bundle = await execIn(agent, ['cat', '/home/node/.claude-bottle/ca-certificates.pem'], { user: 'node' });
    expect((bundle.output.match(/BEGIN CERTIFICATE/g) ?? []).length).toBeGreaterThan(50);
    expect(bundle.output.trimEnd().endsWith(ca.output.trimEnd())).toBe(true);
    // The CA's private key is not in the agent: nothing key-like below its home.
    const keys = await execIn(agent, ['bash', '-c', 'grep -rl "PRIVATE KEY" /home/node 2>/dev/null || true'], {
      user: 'node',
    });
    expect(keys.output.trim()).toBe('');
  });
});
