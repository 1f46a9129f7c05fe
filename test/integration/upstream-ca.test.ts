import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM_CA_ENV } from '../../src/effects/upstream-ca.js';
import { resourceNames } from '../../src/shared/names.js';
import { execIn } from '../support/docker.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { standInTls } from '../support/stand-in-tls.js';
import { freePort } from '../support/upstream.js';

/**
 * A worker's CLAUDE_BOTTLE_UPSTREAM_CA: roots its gateways trust, next to the
 * system's, for their own connections upstream. An inspected HTTPS host
 * served by a stand-in (its certificate signed by a test CA) answers the
 * agent only when the worker was told to trust that CA.
 */

const STAND_IN = 'standin.test';
const BODY = 'hello-from-the-stand-in';
const dir = mkdtempSync(join(tmpdir(), 'cb-upstream-ca-'));
let caFile: string;
let server: Server;
let port: number;
let requests = 0;

beforeAll(async () => {
  port = await freePort();
  const tls = standInTls([STAND_IN], dir);
  caFile = tls.caFile;
  server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
    requests += 1;
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** The agent's curl of the stand-in through its gateway, in a fresh bottle of a fresh harness. */
async function fetchThroughBottle(env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  const h: BottleHarness = await startHarness({ env });
  try {
    const manifest = h.writeManifest({
      bottles: [
        {
          name: 'standin',
          egress: { allow: [`${STAND_IN}:${port}`] },
          extra_hosts: { [STAND_IN]: 'host-gateway', ...PIN_DEFAULT_HOSTS },
        },
      ],
      agents: [{ name: 'sleeper', bottle: 'standin', command: ['sleep', '600'] }],
    });
    const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']);
    expect(started.code, started.stderr).toBe(0);
    const identity = identityFrom(started);
    await h.waitForEvent(identity, 'agent.started');
    const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
    const url = `https://${STAND_IN}:${port}/`;
    const curl = ['curl', '-sS', '--max-time', '20', '-w', '\n%{http_code}', url];
    const result = await execIn(agent, curl, { user: '1000:1000' });
    await h.cli(['stop', identity]);
    return result;
  } finally {
    await h.cleanup();
  }
}

describe('the worker’s extra upstream roots', () => {
  it('let an inspected HTTPS host served by a stand-in answer; without them the gateway refuses it', async () => {
    const trusted = await fetchThroughBottle({ [UPSTREAM_CA_ENV]: caFile });
    expect(trusted.code, trusted.output).toBe(0);
    expect(trusted.output).toBe(`${BODY}\n200`);
    expect(requests).toBe(1);

    const untrusted = await fetchThroughBottle({ [UPSTREAM_CA_ENV]: '' });
    // The agent's TLS ends at the gateway either way; only the gateway's own connection upstream fails.
    expect(untrusted.output.split('\n').at(-1)).toMatch(/^5\d\d$/);
    expect(requests).toBe(1);
  }, 360_000);
});
