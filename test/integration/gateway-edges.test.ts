/**
 * The gateway's edges: where it listens and what it records of attempts that
 * never reach its proxy. First on loopback (the gateway's DNS server, no
 * Docker), then in a real bottle (the built images, the worker's networks):
 *
 * - the agent-facing ports answer on the gateway's internal address only;
 *   from this host, its egress-bridge address refuses them;
 * - a DNS lookup the agent makes itself is refused by the gateway and shows
 *   up in the event log as egress.denied (reason dns_lookup).
 *
 * Traffic goes only to loopback, to the bottle's own containers, and to a
 * listener this test runs (reached through the gateway as `allowed.test`).
 */
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDnsQuery } from '../../src/gateway/dns.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import type { GatewayLine } from '../../src/gateway/protocol.js';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { execIn } from '../support/docker.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';

/** A DNS query for `labels` (raw bytes each), type A, recursion desired. */
function dnsQuery(id: number, labels: Buffer[]): Buffer {
  const header = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);
  return Buffer.concat([header, name, Buffer.from([0, 1, 0, 1])]);
}

function udpExchange(port: number, packet: Buffer, timeoutMs = 1000): Promise<Buffer | 'no answer'> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve('no answer');
    }, timeoutMs);
    socket.on('message', (answer) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    });
    socket.send(packet, port, '127.0.0.1');
  });
}

describe("the gateway's DNS server (loopback)", () => {
  let gateway: RunningGateway | undefined;
  let lines: GatewayLine[];
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  async function start(): Promise<number> {
    lines = [];
    gateway = await startGateway(
      { identity: 'dns-ab12c', proxy_port: 0, credential_port: 0, dns_port: 0 },
      {},
      // The limiters' clock stands still: recording budgets are counted, not timed.
      { onDecision: (l) => lines.push(l), now: () => 0 },
    );
    return gateway.dnsPort!;
  }

  it('refuses a lookup (REFUSED, not a timeout) and records it as a denied egress attempt', async () => {
    const port = await start();
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    await expect(resolver.resolve4('exfil.example.test')).rejects.toMatchObject({ code: 'EREFUSED' });
    expect(lines).toEqual([
      expect.objectContaining({
        t: 'egress',
        decision: 'denied',
        host: 'exfil.example.test',
        port: 53,
        method: 'DNS',
        reason: 'dns_lookup',
      }),
    ]);
  });

  it('answers with the query id and question, and no records', async () => {
    const port = await start();
    const query = dnsQuery(0xbeef, [Buffer.from('a'), Buffer.from('test')]);
    const answer = (await udpExchange(port, query)) as Buffer;
    expect(answer.readUInt16BE(0)).toBe(0xbeef);
    expect(answer.readUInt16BE(2) & 0x8000).toBe(0x8000); // a response
    expect(answer.readUInt16BE(2) & 0x000f).toBe(5); // REFUSED
    const counts = [4, 6, 8, 10].map((offset) => answer.readUInt16BE(offset));
    expect(counts).toEqual([1, 0, 0, 0]);
    expect(answer.subarray(12)).toEqual(query.subarray(12));
  });

  it('records a name with control bytes in them escaped, never raw', async () => {
    const port = await start();
    await udpExchange(port, dnsQuery(7, [Buffer.from('x\u001b[2Ky\r'), Buffer.from('a.b'), Buffer.from('test')]));
    expect(lines).toEqual([expect.objectContaining({ host: 'x\\027[2Ky\\013.a\\.b.test', reason: 'dns_lookup' })]);
    expect(JSON.stringify(lines)).not.toMatch(/\\u001b|\\r/);
  });

  it('ignores what is not a query, and stops recording (but keeps refusing) past its budget', async () => {
    const port = await start();
    expect(await udpExchange(port, Buffer.from('not dns'), 300)).toBe('no answer');
    const response = dnsQuery(1, [Buffer.from('a')]);
    response[2] |= 0x80; // QR set: a response, not a query
    expect(await udpExchange(port, response, 300)).toBe('no answer');
    expect(lines).toEqual([]);
    for (let i = 0; i < 70; i++) {
      const answer = await udpExchange(port, dnsQuery(i, [Buffer.from(`n${i}`), Buffer.from('test')]));
      expect(answer).toBeInstanceOf(Buffer);
    }
    expect(lines).toHaveLength(60);
  });

  it('parses only well-formed questions', () => {
    expect(parseDnsQuery(dnsQuery(1, [Buffer.from('ok'), Buffer.from('test')]))?.name).toBe('ok.test');
    expect(parseDnsQuery(dnsQuery(1, []))?.name).toBe('.');
    const truncated = dnsQuery(1, [Buffer.from('ok')]).subarray(0, 15);
    expect(parseDnsQuery(truncated)).toBeUndefined();
    const pointer = Buffer.concat([dnsQuery(1, []).subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    expect(parseDnsQuery(pointer)).toBeUndefined();
  });
});

describe('a real bottle', () => {
  let h: BottleHarness;
  let identity: string;
  let agent: Docker.Container;
  let gatewayIp: string;
  let gatewayEgressIp: string;
  let listener: { server: Server; port: number; connections: number; sockets: Set<Socket> };

  beforeAll(async () => {
    h = await startHarness();
    const state = { connections: 0, sockets: new Set<Socket>() };
    const server = createServer((socket) => {
      state.connections += 1;
      state.sockets.add(socket);
      socket.on('close', () => state.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nreached');
    });
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    listener = Object.assign(state, { server, port: (server.address() as AddressInfo).port });
    const manifest = h.writeManifest({
      bottles: [
        {
          name: 'edges',
          egress: { allow: [`allowed.test:${listener.port}`] },
          extra_hosts: { ...PIN_DEFAULT_HOSTS, 'allowed.test': 'host-gateway' },
        },
      ],
      agents: [{ name: 'edger', bottle: 'edges', command: ['sleep', '900'] }],
    });
    identity = identityFrom(await h.cli(['--manifest', manifest, 'start', 'edger', '--detach']));
    const events = await h.waitForEvent(identity, 'agent.started');
    gatewayIp = (events.find((e) => e.type === 'gateway.started')!.data as { ip: string }).ip;
    agent = h.docker.getContainer(`cb-${identity}-agent`);
    const gw = await h.docker.getContainer(`cb-${identity}-gateway`).inspect();
    gatewayEgressIp = gw.NetworkSettings.Networks[`cb-${identity}-egress`].IPAddress;
  }, 180_000);

  afterAll(async () => {
    await h?.cleanup();
    if (listener) {
      // The gateway may keep its upstream connection open; close() waits for every one.
      for (const socket of listener.sockets) socket.destroy();
      await new Promise<void>((resolve) => listener.server.close(() => resolve()));
    }
  }, 120_000);

  const inAgent = (cmd: string) => execIn(agent, ['sh', '-c', cmd], { user: 'node' });

  function connectOutcome(host: string, port: number): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect({ host, port, timeout: 5000 }, () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('timeout', () => {
        socket.destroy();
        resolve('timeout');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }

  it("refuses the proxy and credential ports on the gateway's egress-bridge address, from this host", async () => {
    expect(gatewayEgressIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const port of [3128, 3129]) {
      expect({ port, outcome: await connectOutcome(gatewayEgressIp, port) }).toEqual({ port, outcome: 'ECONNREFUSED' });
    }
  });

  it('still serves the agent on its internal address: allowlisted requests and capability requests', async () => {
    const before = listener.connections;
    const target = `http://allowed.test:${listener.port}/`;
    const allowed = await inAgent(`curl -sS --max-time 10 -x http://${gatewayIp}:3128 ${target}`);
    expect(allowed.output).toContain('reached');
    expect(listener.connections).toBe(before + 1);
    const ask = JSON.stringify({ kind: 'egress', host: 'docs.example.test', reason: 'read the docs' });
    const endpoint = `http://${gatewayIp}:3129/_bottle/capability`;
    const capability = await inAgent(`curl -sS --max-time 10 -X POST -d '${ask}' ${endpoint}`);
    expect(capability.output).toContain('"status":"pending"');
  });

  it("records the agent's own DNS lookup as egress.denied (dns_lookup), and the lookup fails", async () => {
    const after = await h.log.lastSeq(identity);
    const r = await inAgent('timeout 8 getent hosts dns-probe.edges.test; echo "rc=$?"');
    expect(r.output).toMatch(/rc=2/);
    const deadline = Date.now() + 20_000;
    let seen: LifecycleEvent[] = [];
    for (;;) {
      seen = await h.log.read(identity, after + 1);
      const hit = seen.find(
        (e) => e.type === 'egress.denied' && (e.data as { host: string }).host === 'dns-probe.edges.test',
      );
      if (hit) {
        expect(hit.data).toMatchObject({ port: 53, method: 'DNS', reason: 'dns_lookup' });
        break;
      }
      if (Date.now() > deadline) {
        throw new Error(`no dns_lookup denial; saw ${JSON.stringify(seen.map((e) => [e.type, e.data]))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const shown = await h.cli(['events', identity, '--format', 'json']);
    expect(shown.stdout).toContain('dns-probe.edges.test');
  });
});
