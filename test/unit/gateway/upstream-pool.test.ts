/**
 * The gateway's kept-alive upstream connections (upstream-pool.ts), against local TLS servers on two
 * loopback addresses: a socket is reused for the same key only (never across host names, vetted
 * addresses or trusted roots), an agent refuses a destination outside its key, and idle sockets are
 * bounded per key, close after the idle time and when the pool closes.
 */
import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createInterceptionCa } from '../../../src/gateway/interception-ca.js';
import { UpstreamPool, type UpstreamKey } from '../../../src/gateway/upstream-pool.js';

const SECOND_LOOPBACK = '127.0.0.2';

let servers: Server[] = [];
let port: number;
let caPem: string;
let otherCaPem: string;
/** Every upstream connection, with the loopback address it was made to. */
let connections: { address: string; socket: Socket }[] = [];
/** Requests held until `release` is called (to make several sockets busy at once). */
let holding = false;
let held: (() => void)[] = [];

beforeAll(async () => {
  const ca = createInterceptionCa('pool upstream', ['one.test', 'two.test']);
  caPem = ca.certificatePem;
  otherCaPem = createInterceptionCa('another', ['one.test']).certificatePem;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const answer = () => res.end(`${req.headers.host} ${req.url}`);
    if (holding) held.push(answer);
    else answer();
  };
  const first = createHttpsServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, handle);
  await new Promise<void>((resolve) => first.listen(0, '127.0.0.1', resolve));
  port = (first.address() as AddressInfo).port;
  const second = createHttpsServer({ SNICallback: (name, done) => done(null, ca.contextFor(name)) }, handle);
  await new Promise<void>((resolve, reject) => {
    second.once('error', reject);
    second.listen(port, SECOND_LOOPBACK, resolve);
  });
  servers = [first, second];
  for (const server of servers) {
    server.on('secureConnection', (socket: Socket) => connections.push({ address: socket.localAddress!, socket }));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ),
  );
});

beforeEach(() => {
  connections = [];
  holding = false;
  held = [];
});

function key(overrides: Partial<UpstreamKey> = {}): UpstreamKey {
  return { secure: true, host: 'one.test', port, address: '127.0.0.1', ca: caPem, ...overrides };
}

function get(agent: Agent, host: string, path = '/'): Promise<{ body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host, port, path, agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The agent takes a socket back once the response has ended and the request is done: a turn later. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 5));
}

function closed(socket: Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

describe('the upstream pool', () => {
  it('reuses one connection for requests admitted to the same key', async () => {
    const pool = new UpstreamPool();
    const first = await get(pool.agent(key()), 'one.test', '/a');
    await settled();
    const second = await get(pool.agent(key()), 'one.test', '/b');
    pool.close();
    expect(first.body).toBe(`one.test:${port} /a`);
    expect(second.body).toBe(`one.test:${port} /b`);
    expect([first.reused, second.reused]).toEqual([false, true]);
    expect(connections).toHaveLength(1);
  });

  it('does not reuse a connection across host names at the same vetted address', async () => {
    const pool = new UpstreamPool();
    await get(pool.agent(key()), 'one.test');
    await settled();
    const other = await get(pool.agent(key({ host: 'two.test' })), 'two.test');
    pool.close();
    expect(other.reused).toBe(false);
    expect(connections).toHaveLength(2);
  });

  it('does not reuse a connection across vetted addresses of the same host', async () => {
    const pool = new UpstreamPool();
    await get(pool.agent(key()), 'one.test');
    await settled();
    const other = await get(pool.agent(key({ address: SECOND_LOOPBACK })), 'one.test');
    await settled();
    const again = await get(pool.agent(key({ address: SECOND_LOOPBACK })), 'one.test');
    pool.close();
    expect([other.reused, again.reused]).toEqual([false, true]);
    expect(connections.map((c) => c.address).sort()).toEqual(['127.0.0.1', SECOND_LOOPBACK]);
  });

  it('does not reuse a connection checked against other trusted roots', async () => {
    const pool = new UpstreamPool();
    await get(pool.agent(key()), 'one.test');
    await settled();
    const other = await get(pool.agent(key({ ca: `${caPem}\n${otherCaPem}` })), 'one.test');
    pool.close();
    expect(other.reused).toBe(false);
    expect(connections).toHaveLength(2);
  });

  it('does not share a connection between a credential route and requests of the agent', async () => {
    const pool = new UpstreamPool();
    await get(pool.agent(key()), 'one.test');
    await settled();
    const routed = await get(pool.agent(key({ route: 'github' })), 'one.test');
    pool.close();
    expect(routed.reused).toBe(false);
    expect(connections).toHaveLength(2);
  });

  it('refuses a request for a destination outside its key', async () => {
    const pool = new UpstreamPool();
    await expect(get(pool.agent(key()), 'two.test')).rejects.toThrow(/another destination/);
    pool.close();
    expect(connections).toHaveLength(0);
  });

  it('keeps at most its idle bound per key, the most recently used first', async () => {
    const pool = new UpstreamPool({ idlePerKey: 2, idleMs: 60_000, keys: 8 });
    holding = true;
    const busy = Array.from({ length: 5 }, (_, i) => get(pool.agent(key()), 'one.test', `/${i}`));
    while (held.length < 5) await pause();
    for (const answer of held) answer();
    await Promise.all(busy);
    // The surplus sockets are closed by the agent as they come free.
    while (connections.filter((c) => !c.socket.destroyed).length > 2) await pause();
    expect(pool.idleSockets()).toBe(2);
    pool.close();
    await Promise.all(connections.map((c) => closed(c.socket)));
    expect(pool.idleSockets()).toBe(0);
  });

  it('closes a socket idle for longer than its idle time', async () => {
    const pool = new UpstreamPool({ idlePerKey: 4, idleMs: 50, keys: 8 });
    await get(pool.agent(key()), 'one.test');
    await closed(connections[0]!.socket);
    await settled();
    expect(pool.idleSockets()).toBe(0);
    const next = await get(pool.agent(key()), 'one.test');
    pool.close();
    expect(next.reused).toBe(false);
    expect(connections).toHaveLength(2);
  });

  it('closes its idle sockets when it is closed, and pools nothing afterwards', async () => {
    const pool = new UpstreamPool({ idlePerKey: 4, idleMs: 60_000, keys: 8 });
    await get(pool.agent(key()), 'one.test');
    await settled();
    expect(pool.idleSockets()).toBe(1);
    pool.close();
    await closed(connections[0]!.socket);
    await get(pool.agent(key()), 'one.test');
    await closed(connections[1]!.socket);
    expect(pool.idleSockets()).toBe(0);
  });

  it('past its bound on keys, gives a connection that is not kept', async () => {
    const pool = new UpstreamPool({ idlePerKey: 4, idleMs: 60_000, keys: 1 });
    await get(pool.agent(key()), 'one.test');
    await get(pool.agent(key({ host: 'two.test' })), 'two.test');
    await closed(connections[1]!.socket);
    await settled();
    expect(pool.idleSockets()).toBe(1);
    expect(connections[0]!.socket.destroyed).toBe(false);
    pool.close();
  });
});
