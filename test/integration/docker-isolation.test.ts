import type Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRuntime } from '../../src/effects/docker/client.js';
import {
  agentContainerSpec,
  ensureConnected,
  ensureContainer,
  gatewayContainerSpec,
  startContainer,
} from '../../src/effects/docker/containers.js';
import {
  ensureBottleNetworks,
  isHostAddressless,
  isSubnetTaken,
  type BottleNetworks,
} from '../../src/effects/docker/networks.js';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import type { NetworkLayout } from '../../src/machines/context.js';
import { overlaps, parseCidr, subnetAddresses, subnetCandidates, subnetPool } from '../../src/shared/subnet-pool.js';
import {
  ensureToolsImage,
  execIn,
  sweepIdentity,
  testDocker,
  testIdentity,
  testLabels,
  testPlan,
  TEST_TOOLS_IMAGE,
} from '../support/docker.js';

const STAND_IN_PORT = 3128;

/** Exit 0 and the first line the peer sends when a TCP connection succeeds within 3 s; non-zero otherwise. */
function connectScript(ip: string, port: number): string[] {
  return ['bash', '-c', `timeout 3 bash -c 'exec 3<>/dev/tcp/${ip}/${port} && head -1 <&3'`];
}

/** Every IPv4 address of this machine that is not loopback: each one is "the host" to a container. */
function hostIpv4Addresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a): a is NonNullable<typeof a> => !!a && a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

/** The container's address on `network`, as Docker reports it. */
async function addressOn(container: Docker.Container, network: string): Promise<string> {
  const ip = (await container.inspect()).NetworkSettings.Networks[network]?.IPAddress;
  if (!ip) throw new Error(`container ${container.id} has no address on ${network}`);
  return ip;
}

/** The launch's view of the networks: names, subnets and the fixed addresses on the internal one. */
function layoutOf(networks: BottleNetworks): NetworkLayout {
  const { gateway, agent, pipelock } = subnetAddresses(networks.internal.subnet);
  return {
    internal: { name: networks.internal.name, subnet: networks.internal.subnet },
    egress: { name: networks.egress.name, subnet: networks.egress.subnet },
    addresses: { gateway, agent, pipelock },
  };
}

describe.each<ContainerRuntime>(['runc', 'runsc'])('a bottle under %s', (runtime) => {
  const docker: Docker = testDocker();
  const identity = testIdentity('isol');
  let hostServer: Server;
  let hostPort: number;
  let networks: BottleNetworks;
  let layout: NetworkLayout;
  let agent: Docker.Container;
  let gateway: Docker.Container;
  let gatewayEgressIp: string;
  let cwd: string;
  /** The bridges' own addresses: the egress one is the host; the internal one is held by nothing. */
  const internalBridgeIp = () => subnetAddresses(networks.internal.subnet).bridge;
  const egressBridgeIp = () => subnetAddresses(networks.egress.subnet).bridge;

  /** Exit code of a control container on `network` trying the host service at `ip` (0: it connected). */
  async function controlConnects(network: string, ip: string): Promise<number> {
    const control = await docker.createContainer({
      Image: TEST_TOOLS_IMAGE,
      Cmd: connectScript(ip, hostPort),
      Labels: testLabels(identity, 'control'),
      HostConfig: { NetworkMode: network, Runtime: runtime },
    });
    try {
      await control.start();
      return ((await control.wait()) as { StatusCode: number }).StatusCode;
    } finally {
      await control.remove({ force: true });
    }
  }

  beforeAll(async () => {
    await ensureToolsImage(docker);
    cwd = await mkdtemp(join(tmpdir(), 'cb-isolation-'));
    // A host service bound to every interface: exactly what the agent must not reach.
    hostServer = createServer((socket) => socket.end('host-service\n'));
    await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
    hostPort = (hostServer.address() as { port: number }).port;

    const plan = testPlan(identity, { runtime, cwd, copy_cwd: false });
    // Nothing but the bottle's own networks: its address-less internal bridge has to hold on its own.
    networks = await ensureBottleNetworks(docker, identity, plan.agent, subnetPool());
    layout = layoutOf(networks);

    const gatewaySpec = gatewayContainerSpec(plan, { network: layout, image: TEST_TOOLS_IMAGE });
    gatewaySpec.Cmd = ['socat', `TCP-LISTEN:${STAND_IN_PORT},fork,reuseaddr`, 'SYSTEM:echo gateway'];
    const gatewayState = await ensureContainer(docker, gatewaySpec);
    gateway = gatewayState.container;
    await ensureConnected(docker, gatewayState.id, networks.internal.name, layout.addresses.gateway);
    await startContainer(gateway);
    gatewayEgressIp = await addressOn(gateway, networks.egress.name);

    const agentOptions = { env: {}, network: layout, image: TEST_TOOLS_IMAGE, user: '1000:1000' };
    const agentSpec = agentContainerSpec(plan, agentOptions);
    const agentState = await ensureContainer(docker, agentSpec);
    agent = agentState.container;
    await startContainer(agent);
  });

  afterAll(async () => {
    await removeBottleResources(docker, identity).catch(() => undefined);
    await sweepIdentity(docker, identity);
    await new Promise<void>((resolve) => (hostServer ? hostServer.close(() => resolve()) : resolve()));
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it('runs the agent under the requested runtime, only on the internal network, at its fixed address', async () => {
    const info = await agent.inspect();
    expect(info.HostConfig.Runtime).toBe(runtime);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([networks.internal.name]);
    expect(info.NetworkSettings.Networks[networks.internal.name].IPAddress).toBe(layout.addresses.agent);
  });

  it('lets the agent reach the gateway at its fixed internal address', async () => {
    expect(await addressOn(gateway, networks.internal.name)).toBe(layout.addresses.gateway);
    const result = await execIn(agent, connectScript(layout.addresses.gateway, STAND_IN_PORT));
    expect(result.output.trim()).toBe('gateway');
    expect(result.code).toBe(0);
  });

  it('lets a control container on the egress bridge reach the host service: the probe can see the host', async () => {
    expect(await controlConnects(networks.egress.name, egressBridgeIp())).toBe(0);
  });

  it('shows the pitfall is real: an internal network without the address-less option reaches the host', async () => {
    // Same pool, prefix and Internal flag as the bottle's internal network; only the option is missing.
    let plain: Docker.Network | undefined;
    let bridgeIp = '';
    for (const subnet of subnetCandidates(subnetPool(), `cb-${identity}-plain`)) {
      bridgeIp = subnetAddresses(subnet).bridge;
      try {
        plain = await docker.createNetwork({
          Name: `cb-${identity}-plain`,
          Driver: 'bridge',
          Internal: true,
          CheckDuplicate: true,
          Labels: testLabels(identity, 'control'),
          IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: bridgeIp }] },
        });
        break;
      } catch (err) {
        if (!isSubnetTaken(err)) throw err;
      }
    }
    if (!plain) throw new Error('no free subnet in the pool for the control network');
    try {
      expect(await controlConnects(plain.id, bridgeIp)).toBe(0);
    } finally {
      await plain.remove();
    }
  });

  it('gives the internal bridge no address on the host', async () => {
    type Inspected = { Internal: boolean; Options?: Record<string, string> };
    const info = (await docker.getNetwork(networks.internal.id).inspect()) as Inspected;
    expect(info.Internal).toBe(true);
    expect(isHostAddressless(info.Options)).toBe(true);
    const bridge = `br-${networks.internal.id.slice(0, 12)}`;
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(true);
    expect((networkInterfaces()[bridge] ?? []).filter((a) => a.family === 'IPv4')).toEqual([]);
    // No interface of this host holds the bridge address or any other address of the internal subnet.
    const internal = parseCidr(networks.internal.subnet);
    expect(hostIpv4Addresses().filter((a) => overlaps(parseCidr(`${a}/32`), internal))).toEqual([]);
  });

  it('keeps the agent from reaching the host through the internal bridge address', async () => {
    const result = await execIn(agent, connectScript(internalBridgeIp(), hostPort));
    expect(result.output).not.toContain('host-service');
    expect(result.code).not.toBe(0);
  });

  it("keeps the agent from reaching the host through the bottle's egress bridge address", async () => {
    // The host as the bottle's other network sees it: an address this test made. The host's addresses on
    // networks the test did not make are not aimed at (tests send only to what they made themselves).
    const result = await execIn(agent, connectScript(egressBridgeIp(), hostPort));
    expect(result.output).not.toContain('host-service');
    expect(result.code).not.toBe(0);
  });

  it('keeps the agent from connecting directly to an address outside its network', async () => {
    const result = await execIn(agent, connectScript(gatewayEgressIp, STAND_IN_PORT));
    expect(result.output).not.toContain('gateway');
    expect(result.code).not.toBe(0);
  });

  it("leaves the agent unable to resolve outside names: its resolver is the gateway's internal address", async () => {
    const info = await agent.inspect();
    expect(info.HostConfig.Dns).toEqual([layout.addresses.gateway]);
    for (const name of ['example.invalid', 'debian.org']) {
      // One 1 s attempt: the query only ever reaches the (stand-in) gateway, so waiting longer proves nothing.
      const result = await execIn(agent, ['getent', 'hosts', name], { env: ['RES_OPTIONS=timeout:1 attempts:1'] });
      expect({ name, code: result.code }).not.toEqual({ name, code: 0 });
      expect(result.output.trim()).toBe('');
    }
  });

  it("sends the agent's outside-name queries to the gateway's internal address, the one resolver it has", async () => {
    // The stand-in gateway catches what arrives on its internal address, port 53 (the real one refuses and records it).
    const catcher = execIn(gateway, [
      'sh',
      '-c',
      `timeout 4 socat -u UDP-RECV:53,bind=${layout.addresses.gateway} OPEN:/tmp/caught,creat,append; cat /tmp/caught`,
    ]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await execIn(agent, ['getent', 'hosts', 'debian.org'], { env: ['RES_OPTIONS=timeout:1 attempts:1'] });
    const caught = await catcher;
    // DNS wire format: the name travels as length-prefixed labels, \x06debian\x03org.
    expect(caught.output).toContain('\x06debian\x03org');
  });

  it('runs the agent as uid 1000 with no capabilities and no-new-privileges', async () => {
    const uid = await execIn(agent, ['id', '-u']);
    expect(uid.output.trim()).toBe('1000');
    const status = await execIn(agent, ['cat', '/proc/self/status']);
    expect(status.output).toMatch(/^CapEff:\s+0+$/m);
    // gVisor's /proc/self/status has no NoNewPrivs line; prctl (via setpriv) works under both runtimes.
    const privileges = await execIn(agent, ['setpriv', '--dump']);
    expect(privileges.output).toMatch(/^no_new_privs: 1$/m);
    expect((await agent.inspect()).HostConfig.SecurityOpt).toContain('no-new-privileges:true');
  });
});
