import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { inspectNetwork, isHostAddressless } from '../../src/effects/docker/networks.js';
import { LABELS, resourceNames } from '../../src/shared/names.js';
import { subnetAddresses } from '../../src/shared/subnet-pool.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/**
 * A real bottle, started through the CLI, under both runtimes: the only way
 * out of the agent container is the gateway, the gateway lets exactly the
 * allowlist through, refuses everything else with a JSON 403 without ever
 * connecting, and `bottle stop` leaves no container, network or host-guard
 * rule behind.
 *
 * Traffic goes only to this machine: both "upstreams" are test-owned socat
 * containers on the host's network, reached by `.test` names pinned to
 * host-gateway.
 */

let h: BottleHarness;
let upstream: Upstream;
let blocked: Upstream;
let manifest: string;

beforeAll(async () => {
  h = await startHarness();
  upstream = await startUpstream(h.docker, { body: 'hello-from-upstream' });
  blocked = await startUpstream(h.docker, { body: 'must-never-be-seen' });
  manifest = h.writeManifest({
    bottles: [
      {
        name: 'net',
        egress: { allow: [`upstream.test:${upstream.port}`] },
        extra_hosts: { 'upstream.test': 'host-gateway', 'blocked.test': 'host-gateway', ...PIN_DEFAULT_HOSTS },
      },
    ],
    agents: [{ name: 'sleeper', bottle: 'net', command: ['sleep', '600'] }],
  });
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  await upstream?.stop();
  await blocked?.stop();
});

type NetworkCreated = Extract<LifecycleEvent, { type: 'network.created' }>['data'];

async function labelledCount(identity: string): Promise<number> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const [containers, networks] = await Promise.all([
    h.docker.listContainers({ all: true, filters }),
    h.docker.listNetworks({ filters }),
  ]);
  return containers.length + networks.length;
}

async function bottleEvents(identity: string): Promise<LifecycleEvent[]> {
  const shown = await h.cli(['events', identity, '--format', 'json']);
  expect(shown.code).toBe(0);
  return shown.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LifecycleEvent);
}

async function eventuallyEvent(
  identity: string,
  match: (e: LifecycleEvent) => boolean,
  timeoutMs = 20_000,
): Promise<LifecycleEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await bottleEvents(identity)).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${identity}: no matching event within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Parses `curl -i` style output: status line, headers, blank line, body. */
function splitHttp(raw: string): { status: number; body: string } {
  const at = raw.indexOf('\r\n\r\n');
  const head = at >= 0 ? raw.slice(0, at) : raw;
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? NaN);
  return { status, body: at >= 0 ? raw.slice(at + 4) : '' };
}

describe.each(['runc', 'runsc'] as const)(
  'a real bottle under %s reaches the outside only through its gateway',
  (runtime) => {
    let identity: string;
    let agent: ReturnType<BottleHarness['docker']['getContainer']>;
    let gatewayInternalIp: string;
    let gatewayEgressIp: string;
    let egressBridgeIp: string;
    let internalBridgeIp: string;
    let networkCreated: NetworkCreated;
    const inAgent = (cmd: string[]) => execIn(agent, cmd, { user: 'node' });

    beforeAll(async () => {
      const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach'], {
        env: { CLAUDE_BOTTLE_RUNTIME: runtime },
      });
      identity = identityFrom(started);
      const events = await h.waitForEvent(identity, 'agent.started');
      expect(events.find((e) => e.type === 'agent.started')!.data).toMatchObject({ runtime });
      const names = resourceNames(identity);
      agent = h.docker.getContainer(names.agentContainer);
      const gw = await h.docker.getContainer(names.gatewayContainer).inspect();
      gatewayInternalIp = gw.NetworkSettings.Networks[names.internalNetwork].IPAddress;
      gatewayEgressIp = gw.NetworkSettings.Networks[names.egressNetwork].IPAddress;
      const [internal, egress] = await Promise.all([
        inspectNetwork(h.docker, names.internalNetwork),
        inspectNetwork(h.docker, names.egressNetwork),
      ]);
      // The bridges' own addresses: the egress one is the host; the internal one is held by nothing.
      internalBridgeIp = subnetAddresses(internal!.subnet).bridge;
      egressBridgeIp = subnetAddresses(egress!.subnet).bridge;
      networkCreated = events.find((e) => e.type === 'network.created')!.data as NetworkCreated;
      // The agent really runs under the runtime the plan chose.
      expect((await agent.inspect()).HostConfig.Runtime).toBe(runtime);
    }, 180_000);

    it('puts the gateway and the agent at the fixed internal addresses that network.created names', async () => {
      const names = resourceNames(identity);
      const internal = (await inspectNetwork(h.docker, names.internalNetwork))!;
      expect(networkCreated.subnets?.internal).toBe(internal.subnet);
      const { gateway, agent: agentIp, pipelock } = subnetAddresses(internal.subnet);
      expect(networkCreated.addresses).toEqual({ gateway, agent: agentIp, pipelock });
      expect(gatewayInternalIp).toBe(gateway);
      expect((await agent.inspect()).NetworkSettings.Networks[names.internalNetwork].IPAddress).toBe(agentIp);
      // The agent's proxy is the gateway at that address.
      const env = (await agent.inspect()).Config.Env ?? [];
      expect(env).toContain(`HTTPS_PROXY=http://${gateway}:3128`);
    });

    it('gives the internal bridge no host address, so the host is not one hop away from the agent', async () => {
      const info = (await h.docker.getNetwork(resourceNames(identity).internalNetwork).inspect()) as {
        Id: string;
        Internal: boolean;
        Options?: Record<string, string>;
      };
      expect(info.Internal).toBe(true);
      expect(isHostAddressless(info.Options)).toBe(true);
      const bridge = `br-${info.Id.slice(0, 12)}`;
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(true);
      expect((networkInterfaces()[bridge] ?? []).filter((a) => a.family === 'IPv4')).toEqual([]);
      const hostAddresses = Object.values(networkInterfaces())
        .flat()
        .map((a) => a?.address);
      expect(hostAddresses).not.toContain(internalBridgeIp);
    });

    it("the agent's command is the container's main process; the init's gateway wait left no decision", async () => {
      const pid1 = async () => (await inAgent(['cat', '/proc/1/cmdline'])).output.split('\0')[0];
      for (let i = 0; i < 50 && (await pid1()) !== 'sleep'; i++)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await pid1()).toBe('sleep');
      // Decisions reach the log within a few hundred ms of the gateway printing them.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await bottleEvents(identity)).filter((e) => e.type.startsWith('egress.'))).toEqual([]);
    });

    it('an allowlisted host answers by name through the gateway and is recorded as egress.allowed', async () => {
      const before = await upstream.connections();
      const res = await inAgent(['curl', '-sS', '--max-time', '15', `http://upstream.test:${upstream.port}/`]);
      expect(res.output).toBe('hello-from-upstream');
      expect(res.code).toBe(0);
      expect(await upstream.connections()).toBe(before + 1);
      const allowed = await eventuallyEvent(
        identity,
        (e) => e.type === 'egress.allowed' && (e.data as { host: string }).host === 'upstream.test',
      );
      expect(allowed.data).toMatchObject({ host: 'upstream.test', port: upstream.port });
    });

    it('an unlisted host gets the JSON 403 for plain HTTP and CONNECT; the gateway never connects to it', async () => {
      const plain = await inAgent(['curl', '-sS', '-i', '--max-time', '15', `http://blocked.test:${blocked.port}/`]);
      const plainRes = splitHttp(plain.output);
      expect(plainRes.status).toBe(403);
      const plainBody = JSON.parse(plainRes.body) as Record<string, unknown>;
      expect(plainBody).toMatchObject({ error: 'egress_denied', host: 'blocked.test', port: blocked.port });
      expect(plainBody.reason).toEqual(expect.any(String));
      expect(plainBody.how_to_request).toContain(`bottle approve ${identity}`);

      // curl through the proxy for https:// issues CONNECT; it reports the proxy's answer code.
      const viaCurl = await inAgent([
        'curl',
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_connect}',
        '--max-time',
        '15',
        `https://blocked.test:${blocked.port}/`,
      ]);
      expect(viaCurl.code).not.toBe(0);
      expect(viaCurl.output).toContain('403');
      // The same CONNECT by hand, to read the refusal's body.
      const raw = await inAgent([
        'bash',
        '-c',
        `exec 3<>/dev/tcp/${gatewayInternalIp}/3128 && ` +
          `printf 'CONNECT blocked.test:${blocked.port} HTTP/1.1\\r\\n` +
          `Host: blocked.test:${blocked.port}\\r\\n\\r\\n' >&3 && ` +
          `timeout 5 cat <&3`,
      ]);
      const connectRes = splitHttp(raw.output);
      expect(connectRes.status).toBe(403);
      expect(JSON.parse(connectRes.body)).toMatchObject({
        error: 'egress_denied',
        host: 'blocked.test',
        port: blocked.port,
        reason: expect.any(String),
      });
      expect(JSON.parse(connectRes.body).how_to_request).toEqual(expect.any(String));

      const denied = await eventuallyEvent(
        identity,
        (e) => e.type === 'egress.denied' && (e.data as { host: string }).host === 'blocked.test',
      );
      expect(denied.data).toMatchObject({ host: 'blocked.test', port: blocked.port });
      expect(await blocked.connections()).toBe(0);
    });

    it('direct connections to any address fail while the gateway proxy port answers', async () => {
      const tcp = (ip: string, port: number) =>
        inAgent(['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`]);
      // Positive control: the same probe works against the one address the agent may use.
      expect((await tcp(gatewayInternalIp, 3128)).code).toBe(0);
      // The upstream server listens on 0.0.0.0 of the host: any path to the host would reach it. Only the
      // bottle's own network addresses are aimed at, never an address of a network the test did not make.
      const targets: Array<[string, number]> = [
        [gatewayEgressIp, 3128],
        [egressBridgeIp, upstream.port],
        [internalBridgeIp, upstream.port],
        [internalBridgeIp, 3128],
      ];
      const probes = await Promise.all(targets.map(([ip, port]) => tcp(ip, port)));
      probes.forEach((p, i) => expect(p.code, `direct connection to ${targets[i].join(':')}`).not.toBe(0));
    });

    it('the agent cannot resolve outside names itself', async () => {
      // upstream.test is pinned only where egress names are resolved (the gateway), never in the agent.
      // Each lookup waits out the resolver's own timeouts (no `timeout` cut-off), so run them side by side.
      const names = ['example.invalid', 'upstream.test', 'deb.debian.org'];
      const results = await Promise.all(names.map((name) => inAgent(['getent', 'hosts', name])));
      results.forEach((res, i) => expect(res.code, `getent hosts ${names[i]}: ${res.output}`).not.toBe(0));
    });

    it('bottle stop leaves no labelled container or network', async () => {
      const stopped = await h.cli(['stop', identity]);
      expect(stopped.code).toBe(0);
      expect(await labelledCount(identity)).toBe(0);
    }, 120_000);
  },
);
