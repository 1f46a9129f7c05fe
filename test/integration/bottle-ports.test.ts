import { createServer, connect, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn } from '../support/docker.js';
import { show } from '../support/workers.js';

/**
 * Published ports, end to end with real Docker: a web server in the bottle answers on the host's
 * loopback only, through a forwarder that listens only on the bottle's egress side and connects only
 * to the agent's port; `bottle port --remove` and the teardown close it; a resume publishes the
 * manifest's ports again. Traffic goes only to loopback, this machine's own addresses and the
 * containers the test made.
 */

let h: BottleHarness;
let manifest: string;
let blocker: Server | undefined;
const PAGE = 'hello-from-bottle';

// A tiny HTTP server on the agent's port 3000: socat runs one reply script per connection.
const SERVE_3000 = [
  'bash',
  '-c',
  String.raw`printf "#!/bin/sh\nread x\nprintf \"HTTP/1.0 200 OK\\\\r\\\\n\\\\r\\\\n` +
    String.raw`hello-from-bottle\"\n" > /tmp/r.sh; ` +
    'chmod +x /tmp/r.sh; trap "exit 143" TERM; socat TCP-LISTEN:3000,fork,reuseaddr EXEC:/tmp/r.sh & wait',
];

/** A port nothing listens on now (the kernel's pick, released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** The body an HTTP GET gets, or the error code when the connection fails. */
async function get(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let body = '';
    socket.setTimeout(5_000, () => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    socket.on('connect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
    socket.on('data', (d) => (body += d.toString()));
    socket.on('end', () => resolve(body));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
  });
}

/** The page, once the agent's server is up (the forwarder connects per connection, the server may start later). */
async function page(port: number): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const body = await get('127.0.0.1', port);
    if (body.includes(PAGE) || Date.now() > deadline) return body;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** An IPv4 address of this machine other than loopback (a Docker bridge's or the machine's own). */
function otherHostAddress(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!address) throw new Error('this machine has no non-loopback IPv4 address to test against');
  return address;
}

function lastRun(events: LifecycleEvent[]): LifecycleEvent[] {
  const at = events.map((e) => e.type).lastIndexOf('bottle.resume_requested');
  return at < 0 ? events : events.slice(at);
}

async function waitInRun(identity: string, done: (e: LifecycleEvent) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const run = lastRun(await h.log.read(identity));
    if (run.some(done)) return;
    if (Date.now() > deadline) throw new Error(`${identity}: no ${what}; saw ${run.map((e) => e.type).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let hostPort: number;

beforeAll(async () => {
  h = await startHarness();
  hostPort = await freePort();
  manifest = h.writeManifest({
    bottles: [
      { name: 'web', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS, ports: [`127.0.0.1:${hostPort}:3000`] },
    ],
    agents: [{ name: 'devsrv', bottle: 'web', command: SERVE_3000 }],
  });
});
afterAll(async () => {
  await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
  await h?.cleanup();
});

describe('published ports', () => {
  it('serves on loopback only, adds and removes one live, closes on stop, reopens on resume', async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'devsrv', '--detach']);
    const identity = identityFrom(started);
    await waitInRun(identity, (e) => e.type === 'port.published' || e.type === 'port.publish_failed', 'port outcome');
    expect(lastRun(await h.log.read(identity)).find((e) => e.type === 'port.published')?.data).toMatchObject({
      address: '127.0.0.1',
      host_port: hostPort,
      bottle_port: 3000,
    });

    // Loopback answers; the machine's other address does not.
    expect(await page(hostPort)).toContain(PAGE);
    expect(await get(otherHostAddress(), hostPort)).toMatch(/^error /);

    // One more port, published live; a taken one fails with one line naming it.
    const second = await freePort();
    const added = await h.cli(['port', identity, `${second}:3000`]);
    expect(added.code, show(added)).toBe(0);
    expect(added.stdout).toContain(`published 127.0.0.1:${second} -> ${identity} port 3000`);
    expect(await page(second)).toContain(PAGE);
    blocker = createServer();
    const taken = await freePort();
    await new Promise<void>((r) => blocker!.listen(taken, '127.0.0.1', r));
    const refused = await h.cli(['port', identity, `${taken}:3000`]);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr.trim()).toBe(`bottle: port 127.0.0.1:${taken} is already in use on this host`);

    const listed = await h.cli(['ports', identity, '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toEqual([
      { address: '127.0.0.1', host_port: Math.min(hostPort, second), bottle_port: 3000 },
      { address: '127.0.0.1', host_port: Math.max(hostPort, second), bottle_port: 3000 },
    ]);
    const list = await h.cli(['list', '--format', 'json']);
    const row = (JSON.parse(list.stdout) as Array<{ identity: string; ports: string[] }>).find(
      (r) => r.identity === identity,
    );
    expect(row?.ports.sort()).toEqual([`127.0.0.1:${hostPort}->3000`, `127.0.0.1:${second}->3000`].sort());

    // The agent cannot reach the forwarder: it listens only on the egress side, which the agent has no route to.
    const forwarder = await h.docker.getContainer(`cb-${identity}-port-${hostPort}`).inspect();
    const agent = h.docker.getContainer(`cb-${identity}-agent`);
    for (const net of Object.values(forwarder.NetworkSettings.Networks)) {
      const probe = await execIn(
        agent,
        ['sh', '-c', `nc -z -w 2 ${net.IPAddress} 8080 && echo reached || echo refused`],
        {
          user: 'node',
        },
      );
      expect(probe.output.trim(), net.IPAddress).toBe('refused');
    }

    const removed = await h.cli(['port', identity, '--remove', String(second)]);
    expect(removed.code, show(removed)).toBe(0);
    expect(await get('127.0.0.1', second)).toMatch(/^error /);
    expect(await page(hostPort)).toContain(PAGE);

    // The teardown closes the rest.
    const stopped = await h.cli(['stop', identity]);
    expect(stopped.code, show(stopped)).toBe(0);
    expect(await get('127.0.0.1', hostPort)).toMatch(/^error /);
    const filters = JSON.stringify({ label: [`dev.claude-bottle.identity=${identity}`] });
    expect(await h.docker.listContainers({ all: true, filters })).toEqual([]);
    expect(JSON.parse((await h.cli(['ports', identity, '--format', 'json'])).stdout)).toEqual([]);

    // A resumed bottle publishes its manifest ports again.
    const resumed = await h.cli(['resume', identity, '--detach']);
    expect(resumed.code, show(resumed)).toBe(0);
    await waitInRun(identity, (e) => e.type === 'port.published', 'port.published after the resume');
    expect(await page(hostPort)).toContain(PAGE);
    expect((await h.cli(['stop', identity])).code).toBe(0);
    expect(await get('127.0.0.1', hostPort)).toMatch(/^error /);
  });
});

describe('remote control', () => {
  it('the plan shows it and its hosts (text, JSON); a launch refuses it with exit 2', async () => {
    const json = await h.cli([
      '--manifest',
      manifest,
      'start',
      'devsrv',
      '--dry-run',
      '--format',
      'json',
      '--remote-control',
    ]);
    expect(json.code, show(json)).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      remote_control: true,
      remote_control_hosts: ['api.anthropic.com', 'claude.ai'],
    });
    const off = await h.cli(['--manifest', manifest, 'start', 'devsrv', '--dry-run', '--format', 'json']);
    expect(JSON.parse(off.stdout)).toMatchObject({ remote_control: false, remote_control_hosts: [] });
    const text = await h.cli(['--manifest', manifest, 'start', 'devsrv', '--dry-run', '--remote-control']);
    expect(text.stdout).toContain('remote_control: true (would add api.anthropic.com, claude.ai;');
    expect(text.stdout).toContain(`127.0.0.1:${hostPort}:3000`);

    const refused = await h.cli(['--manifest', manifest, 'start', 'devsrv', '--detach', '--remote-control']);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('remote control is refused');
  });
});
