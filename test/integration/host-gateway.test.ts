import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceNames } from '../../src/shared/names.js';
import { ensureToolsImage, execIn } from '../support/docker.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/**
 * `host-gateway` in extra_hosts is Docker's host-gateway address (the default
 * bridge's, or `host-gateway-ip` in daemon.json), not the bottle's egress
 * bridge. A host service bound only to that address answers a bottle.
 */

let h: BottleHarness;
let upstream: Upstream;
let manifest: string;
let hostGatewayAddress: string;

/** What Docker itself resolves host-gateway to, read from a throwaway container's /etc/hosts. */
async function dockerHostGateway(): Promise<string> {
  const image = await ensureToolsImage(h.docker);
  const probe = await h.docker.createContainer({
    Image: image,
    Cmd: ['sleep', '60'],
    HostConfig: { ExtraHosts: ['probe.test:host-gateway'], AutoRemove: false },
  });
  try {
    await probe.start();
    const { output } = await execIn(probe, ['sh', '-c', 'grep -w probe.test /etc/hosts']);
    const address = output.trim().split(/\s+/)[0];
    if (!address) throw new Error(`Docker wrote no host-gateway address: ${output}`);
    return address;
  } finally {
    await probe.remove({ force: true }).catch(() => undefined);
  }
}

beforeAll(async () => {
  h = await startHarness();
  hostGatewayAddress = await dockerHostGateway();
  upstream = await startUpstream(h.docker, { body: 'hello-from-the-host-gateway', bind: hostGatewayAddress });
  manifest = h.writeManifest({
    bottles: [
      {
        name: 'hostgw',
        egress: { allow: [`hostsvc.test:${upstream.port}`] },
        extra_hosts: { 'hostsvc.test': 'host-gateway', ...PIN_DEFAULT_HOSTS },
      },
    ],
    agents: [{ name: 'sleeper', bottle: 'hostgw', command: ['sleep', '600'] }],
  });
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  await upstream?.stop();
});

describe('extra_hosts host-gateway', () => {
  it("reaches a host service bound only to the daemon's host-gateway address, through the gateway", async () => {
    const identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach']));
    await h.waitForEvent(identity, 'gateway.ready');
    await h.waitForEvent(identity, 'agent.started');
    const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
    const url = `http://hostsvc.test:${upstream.port}/`;
    const { output, code } = await execIn(agent, ['curl', '-sS', '--max-time', '15', url], { user: '1000:1000' });
    expect(code, output).toBe(0);
    expect(output).toContain('hello-from-the-host-gateway');
    expect(await upstream.connections()).toBe(1);
    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, stopped.stderr).toBe(0);
  }, 240_000);
});
