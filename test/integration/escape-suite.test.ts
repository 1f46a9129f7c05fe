import { execFileSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { execIn } from '../support/docker.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/**
 * Escape attempts from INSIDE a real bottle (the built agent image, user
 * node, the worker's real networks and gateway). Each attempt is asserted
 * refused; where the gateway is the one refusing, the refusal must also be in
 * the bottle's event log as `egress.denied` with the matching host, port and
 * reason. Attempts that never reach the gateway (direct IP, DNS, no proxy)
 * are asserted refused at the network level, and their names say so.
 *
 * Every target is either a `.test` name the gateway refuses without
 * connecting, or an address this test owns: a TCP listener on this host that
 * counts the connections and bytes it gets, reached only through the
 * gateway's pinned `allowed.test -> host-gateway`.
 */
let h: BottleHarness;
let identity: string;
let agent: Docker.Container;
let gatewayIp: string; // the gateway's address on the bottle's internal network
let gatewayEgressIp: string; // the gateway's address on the egress network
let internalBridgeGw: string; // this host, as seen from the internal bridge
let egressBridgeGw: string; // this host, as seen from the egress bridge
let listener: { server: Server; port: number; connections: number; bytes: number; sockets: Set<Socket> };

beforeAll(async () => {
  h = await startHarness();
  listener = await startCountingListener();
  const manifest = h.writeManifest({
    bottles: [
      {
        name: 'jail',
        egress: {
          allow: [
            'allowed.test',
            `allowed.test:${listener.port}`,
            // Allowlisted on purpose: the address policy, not the allowlist, must refuse these.
            '169.254.169.254',
            '[::1]',
          ],
        },
        extra_hosts: { ...PIN_DEFAULT_HOSTS, 'allowed.test': 'host-gateway' },
      },
    ],
    agents: [{ name: 'prisoner', bottle: 'jail', command: ['sleep', '900'] }],
  });
  identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'prisoner', '--detach']));
  const events = await h.waitForEvent(identity, 'agent.started');
  gatewayIp = (events.find((e) => e.type === 'gateway.started')!.data as { ip: string }).ip;
  agent = h.docker.getContainer(`cb-${identity}-agent`);
  const gw = await h.docker.getContainer(`cb-${identity}-gateway`).inspect();
  gatewayEgressIp = gw.NetworkSettings.Networks[`cb-${identity}-egress`].IPAddress;
  const [internalNet, egressNet] = await Promise.all([
    h.docker.getNetwork(`cb-${identity}-internal`).inspect() as Promise<{ IPAM: { Config: Array<{ Gateway?: string }> } }>,
    h.docker.getNetwork(`cb-${identity}-egress`).inspect() as Promise<{ IPAM: { Config: Array<{ Gateway?: string }> } }>,
  ]);
  internalBridgeGw = internalNet.IPAM.Config[0].Gateway!;
  egressBridgeGw = egressNet.IPAM.Config[0].Gateway!;
}, 180_000);

afterAll(async () => {
  if (listener) {
    for (const s of listener.sockets) s.destroy();
    await new Promise<void>((resolve) => listener.server.close(() => resolve()));
  }
  await h?.cleanup();
});

/** A TCP listener on all of this host's addresses that accepts, counts and never answers. */
async function startCountingListener(): Promise<typeof listener> {
  const state = { connections: 0, bytes: 0, sockets: new Set<Socket>() };
  const server = createServer((socket) => {
    state.connections += 1;
    state.sockets.add(socket);
    socket.on('data', (b: Buffer) => (state.bytes += b.length));
    socket.on('error', () => undefined);
    socket.on('close', () => state.sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return Object.assign(state, { server, port: (server.address() as AddressInfo).port });
}

/** Runs a shell command in the agent container as its own user (node), with the agent's environment. */
function inAgent(cmd: string): Promise<{ code: number; output: string }> {
  return execIn(agent, ['sh', '-c', cmd], { user: 'node' });
}

const proxy = () => `http://${gatewayIp}:3128`;

async function mark(): Promise<number> {
  return h.log.lastSeq(identity);
}

interface Denial {
  host: string;
  port: number;
  method: string;
  reason: string;
}

/** Waits for the gateway's refusal to arrive in the event log as egress.denied after `afterSeq`. */
async function deniedEvent(afterSeq: number, match: Partial<Denial>, timeoutMs = 20_000): Promise<Denial> {
  const deadline = Date.now() + timeoutMs;
  let seen: LifecycleEvent[] = [];
  for (;;) {
    seen = await h.log.read(identity, afterSeq + 1);
    const hit = seen.find((e) => e.type === 'egress.denied' && Object.entries(match).every(([k, v]) => (e.data as Record<string, unknown>)[k] === v));
    if (hit) return hit.data as Denial;
    if (Date.now() > deadline) {
      throw new Error(`no egress.denied matching ${JSON.stringify(match)}; saw ${JSON.stringify(seen.map((e) => [e.type, e.data]))}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe('escape attempts from inside a real bottle are refused', () => {
  it('network level: a direct connection to this host through the internal bridge address fails and never arrives', async () => {
    const before = listener.connections;
    const r = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${internalBridgeGw}:${listener.port}/`);
    expect(r.code, r.output).not.toBe(0);
    expect(listener.connections).toBe(before);
  });

  it('network level: a direct connection to the egress bridge address and to the gateway egress address fails', async () => {
    const before = listener.connections;
    const host = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${egressBridgeGw}:${listener.port}/`);
    expect(host.code, host.output).not.toBe(0);
    const gw = await inAgent(`curl -sS --noproxy '*' --max-time 3 http://${gatewayEgressIp}:3128/`);
    expect(gw.code, gw.output).not.toBe(0);
    expect(listener.connections).toBe(before);
  });

  it('network level: outside DNS does not work in the agent (a name only the gateway knows does not resolve)', async () => {
    // The gateway resolves allowed.test (pinned); the agent's own resolver must not answer it, nor anything else.
    const r = await inAgent('timeout 8 getent hosts allowed.test; echo "rc=$?"');
    expect(r.output).toMatch(/rc=(2|124)/);
    expect(r.output).not.toMatch(/\d+\.\d+\.\d+\.\d+\s+allowed\.test/);
  });

  it('network level: with the proxy variables ignored, an allowlisted name cannot be reached (no DNS, no route)', async () => {
    const before = listener.connections;
    const r = await inAgent(`env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy curl -sS --noproxy '*' --max-time 3 http://allowed.test:${listener.port}/`);
    expect(r.code, r.output).not.toBe(0);
    // curl's own resolver gets no answer: "Could not resolve host" or "Resolving timed out".
    expect(r.output).toMatch(/resolv/i);
    expect(listener.connections).toBe(before);
  });

  it("network level: none of this host's IPv4 addresses is reachable directly, and no connection arrives", async () => {
    const agentRuntime = (await agent.inspect()).HostConfig.Runtime;
    expect(['runc', 'runsc']).toContain(agentRuntime);
    // Every address of every interface (other bottles' egress bridges included) is "the host" to a container.
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    const targets = [...new Set([internalBridgeGw, egressBridgeGw, ...addresses])];
    expect(targets.length).toBeGreaterThan(2);
    const before = listener.connections;
    // A bare TCP connect, all side by side: "reached" is printed for any address that accepts.
    const connect = (ip: string) =>
      `(timeout 3 bash -c 'exec 3<>/dev/tcp/${ip}/${listener.port}' && echo "reached ${ip}") &`;
    const r = await inAgent(`${targets.map(connect).join(' ')} wait; echo done`);
    expect(r.output, `${agentRuntime}: ${r.output}`).not.toContain('reached');
    expect(r.output).toContain('done');
    expect(listener.connections).toBe(before);
  });

  it('network level: the agent has no IPv6 address on any network, and a direct IPv6-literal connection fails', async () => {
    const info = await agent.inspect();
    for (const [name, net] of Object.entries(info.NetworkSettings.Networks)) {
      expect(net.GlobalIPv6Address, name).toBe('');
    }
    const before = listener.connections;
    // The IPv4-mapped literal of this host's egress-bridge address: an address this test owns.
    const r = await inAgent(`curl -sS -6 --noproxy '*' --max-time 3 -g 'http://[::ffff:${egressBridgeGw}]:${listener.port}/'`);
    expect(r.code, r.output).not.toBe(0);
    expect(listener.connections).toBe(before);
  });

  it('network level: the metadata address is unreachable directly (nothing on the host routes for the internal bridge)', async () => {
    // Guard first: only send the packet if it provably cannot leave the machine: the bridge holds no
    // host address (so the agent's default route has no next hop that answers), and the host drops
    // anything forwarded off the bridge.
    const net = (await h.docker.getNetwork(`cb-${identity}-internal`).inspect()) as { Id: string; IPAM: { Config: Array<{ Subnet: string }> } };
    const bridge = `br-${net.Id.slice(0, 12)}`;
    expect((networkInterfaces()[bridge] ?? []).filter((a) => a.family === 'IPv4')).toEqual([]);
    const rules = execFileSync('iptables', ['-S'], { encoding: 'utf8' });
    expect(rules).toContain(`! -d ${net.IPAM.Config[0].Subnet} -i ${bridge} -j DROP`);
    const r = await inAgent(`curl -sS --noproxy '*' --max-time 4 http://169.254.169.254/latest/meta-data/`);
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toMatch(/timed out|Failed to connect|unreachable/i);
  });

  it('gateway: the metadata address through the proxy is refused by the address policy (private_address), even though allowlisted', async () => {
    const at = await mark();
    const r = await inAgent(`curl -sS --max-time 10 -x ${proxy()} -w '\\n%{http_code}' http://169.254.169.254/latest/meta-data/`);
    expect(r.output).toMatch(/403$/);
    expect(r.output).toContain('private_address');
    await deniedEvent(at, { host: '169.254.169.254', port: 80, reason: 'private_address' });
  });

  it('gateway: an IPv6 loopback literal through the proxy is refused by the address policy; an unlisted v6 literal by the allowlist', async () => {
    let at = await mark();
    const loop = await inAgent(`curl -sS --max-time 10 -x ${proxy()} -w '\\n%{http_code}' -g 'http://[::1]/'`);
    expect(loop.output).toMatch(/403$/);
    await deniedEvent(at, { host: '::1', port: 80, reason: 'private_address' });
    at = await mark();
    const unlisted = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} -g 'https://[fd00::1]/'`);
    expect(unlisted.code).not.toBe(0);
    expect(unlisted.output).toMatch(/403/);
    await deniedEvent(at, { host: 'fd00::1', port: 443, method: 'CONNECT', reason: 'not_in_allowlist' });
  });

  it('gateway: CONNECT to an allowlisted host on another port is refused (port_not_allowed)', async () => {
    const at = await mark();
    const r = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} https://allowed.test:8443/`);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/403/);
    await deniedEvent(at, { host: 'allowed.test', port: 8443, method: 'CONNECT', reason: 'port_not_allowed' });
  });

  it('gateway: CONNECT to an unlisted host is refused (not_in_allowlist)', async () => {
    const at = await mark();
    const r = await inAgent(`curl -sS --max-time 10 -p -x ${proxy()} https://unlisted.test/`);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/403/);
    await deniedEvent(at, { host: 'unlisted.test', port: 443, method: 'CONNECT', reason: 'not_in_allowlist' });
  });

  it('gateway: an absolute-form request to an unlisted host is refused with a JSON 403 (not_in_allowlist)', async () => {
    const at = await mark();
    const r = await inAgent(`curl -sS --max-time 10 -x ${proxy()} -w '\\n%{http_code}' http://unlisted.test/steal`);
    expect(r.output).toMatch(/403$/);
    const body = JSON.parse(r.output.slice(0, r.output.lastIndexOf('\n'))) as { error: string; host: string; reason: string };
    expect(body).toMatchObject({ error: 'egress_denied', host: 'unlisted.test', reason: 'not_in_allowlist' });
    await deniedEvent(at, { host: 'unlisted.test', port: 80, method: 'GET', reason: 'not_in_allowlist' });
  });

  it('gateway: a TLS name other than the CONNECT host is refused before any byte reaches the upstream (tls_sni_mismatch)', async () => {
    const bytesBefore = listener.bytes;
    const at = await mark();
    const r = await inAgent(
      `timeout 15 openssl s_client -proxy ${gatewayIp}:3128 -connect allowed.test:${listener.port} -servername other.test </dev/null`,
    );
    expect(r.code).not.toBe(0);
    await deniedEvent(at, { host: 'allowed.test', port: listener.port, method: 'CONNECT', reason: 'tls_sni_mismatch' });
    expect(listener.bytes).toBe(bytesBefore);
  });

  it('control: the same tunnel with the matching TLS name is forwarded (so the SNI check above is what refused)', async () => {
    const bytesBefore = listener.bytes;
    // The listener never answers, so s_client waits; the ClientHello reaching the listener is the proof.
    await inAgent(`timeout 3 openssl s_client -proxy ${gatewayIp}:3128 -connect allowed.test:${listener.port} -servername allowed.test </dev/null`);
    expect(listener.bytes).toBeGreaterThan(bytesBefore);
  });

  it('gateway: a request with 64 KiB of headers is refused (431 header_too_large)', async () => {
    const at = await mark();
    const r = await inAgent(
      `curl -sS --max-time 10 -x ${proxy()} -w '\\n%{http_code}' -H "X-Big: $(head -c 65536 /dev/zero | tr '\\0' a)" http://allowed.test/`,
    );
    expect(r.output).toMatch(/431$/);
    await deniedEvent(at, { reason: 'header_too_large' });
  });

  it('gateway: path escapes on the credential port are refused (400 path_escape), plain and percent-encoded', async () => {
    for (const path of ['/../x', '/%2e%2e/x', '/v1/%2E%2E/%2e%2e/etc/passwd']) {
      const at = await mark();
      const r = await inAgent(`curl -sS --noproxy '*' --path-as-is --max-time 10 -w '\\n%{http_code}' 'http://${gatewayIp}:3129${path}'`);
      expect(r.output, path).toMatch(/400$/);
      expect(r.output).toContain('path_escape');
      await deniedEvent(at, { reason: 'path_escape' });
    }
  });

  // Last: the limiter is gateway-wide, so a drained bucket would refuse the attempts above too.
  it('gateway: a request flood beyond requests_per_minute (600) is cut off with 429 rate_limited', async () => {
    const at = await mark();
    const r = await inAgent(
      `curl -s --no-progress-meter -Z --parallel-max 16 -o /dev/null -w '%{http_code}\\n' -x ${proxy()} 'http://unlisted.test/flood/[1-900]' 2>/dev/null`,
    );
    const codes = r.output.trim().split('\n');
    expect(codes).toHaveLength(900);
    const limited = codes.filter((c) => c === '429').length;
    expect(limited).toBeGreaterThan(0);
    // Everything not rate-limited was still refused by the allowlist.
    expect(codes.filter((c) => c !== '429' && c !== '403')).toEqual([]);
    await deniedEvent(at, { host: 'unlisted.test', port: 80, reason: 'rate_limited' }, 60_000);
  }, 120_000);

  it('every gateway refusal above is in `bottle events --format json`', async () => {
    // The worker records decisions as the gateway prints them; after a 900-request flood
    // the last ones may still be on their way into the log, so wait for them (bounded).
    const wanted = ['private_address', 'not_in_allowlist', 'port_not_allowed', 'tls_sni_mismatch', 'header_too_large', 'path_escape', 'rate_limited'];
    const deadline = Date.now() + 60_000;
    let reasons = new Set<string>();
    for (;;) {
      const r = await h.cli(['events', identity, '--format', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const denied = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; data: Denial })
        .filter((e) => e.type === 'egress.denied');
      reasons = new Set(denied.map((e) => e.data.reason));
      if (wanted.every((w) => reasons.has(w)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const reason of wanted) expect(reasons, reason).toContain(reason);
  });
});
