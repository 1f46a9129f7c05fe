/**
 * images/gateway/listen.pl, the gateway container's entry point, run on this
 * host with its perl: it binds both ports, says so, and execs `node`. Here
 * `node` is a stand-in on PATH that waits before it runs the real bundled
 * gateway, so a request sent right after the listening line provably arrives
 * while the gateway is still booting. Everything listens on and talks to
 * 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli-harness.js';
import { freePort } from '../support/upstream.js';

const LISTEN_SCRIPT = join(REPO, 'images', 'gateway', 'listen.pl');
const GATEWAY_BUNDLE = join(REPO, 'dist', 'gateway', 'gateway.cjs');
const BOOT_DELAY_MS = 700;

let dir: string;
const running: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cb-listen-'));
  // Stands in for the image's node: boots late, then runs the real gateway (listen.pl's arguments are ignored).
  const fakeNode = join(dir, 'bin', 'node');
  mkdirSync(join(dir, 'bin'));
  writeFileSync(
    fakeNode,
    `#!/bin/sh\nsleep ${BOOT_DELAY_MS / 1000}\n` +
      `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(GATEWAY_BUNDLE)}\n`,
  );
  chmodSync(fakeNode, 0o755);
});

afterEach(async () => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function writeConfig(proxyPort: number, credentialPort: number): string {
  const path = join(dir, `gateway-${proxyPort}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      identity: 'listener-ab12c',
      proxy_port: proxyPort,
      credential_port: credentialPort,
      allow: [],
      extra_hosts: {},
      routes: [],
      limits: { max_header_bytes: 32768, requests_per_minute: 600 },
    }),
  );
  return path;
}

interface Launched {
  child: ChildProcess;
  /** stdout lines as they arrive, each with the time it was seen. */
  lines: Array<{ at: number; text: string }>;
  stderr: () => string;
  exited: Promise<number | null>;
  nextLine(predicate: (text: string) => boolean, timeoutMs?: number): Promise<{ at: number; text: string }>;
}

function launch(args: string[], configPath: string, listenAddress: string | null = '127.0.0.1'): Launched {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
    GATEWAY_CONFIG: configPath,
    GATEWAY_SECRETS: join(dir, 'no-secrets.json'),
  };
  delete env.GATEWAY_LISTEN_ADDRESS;
  if (listenAddress !== null) env.GATEWAY_LISTEN_ADDRESS = listenAddress;
  const child = spawn('perl', [LISTEN_SCRIPT, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const lines: Array<{ at: number; text: string }> = [];
  const waiters: Array<() => void> = [];
  let pending = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const text of parts) lines.push({ at: performance.now(), text });
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    async nextLine(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => predicate(l.text));
        if (found) return found;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no matching line; stdout ${JSON.stringify(lines)}; stderr ${stderr}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

function connectOutcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host, () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Sends a plain-HTTP proxy request for a name the allowlist refuses; resolves with the raw response. */
function proxyRequest(port: number): { sentAt: Promise<number>; response: Promise<string> } {
  let markSent: (at: number) => void = () => undefined;
  const sentAt = new Promise<number>((resolve) => (markSent = resolve));
  const response = new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET http://refused.invalid/ HTTP/1.1\r\nHost: refused.invalid\r\nConnection: close\r\n\r\n', () =>
        markSent(performance.now()),
      );
    });
    let body = '';
    socket.on('data', (chunk) => (body += chunk.toString()));
    socket.on('end', () => resolve(body));
    socket.on('error', reject);
  });
  return { sentAt, response };
}

describe('listen.pl, the gateway image entry point', () => {
  it('binds both ports before the gateway boots; an early request waits and is answered, not refused', async () => {
    const [proxyPort, credentialPort] = [await freePort(), await freePort()];
    const gateway = launch([String(proxyPort), String(credentialPort)], writeConfig(proxyPort, credentialPort));

    const listening = await gateway.nextLine((t) => t.includes('"listening"'));
    expect(JSON.parse(listening.text)).toEqual({
      t: 'listening',
      proxy_port: proxyPort,
      credential_port: credentialPort,
    });
    const request = proxyRequest(proxyPort);
    const sentAt = await request.sentAt;
    const response = await request.response;
    const ready = await gateway.nextLine((t) => t.includes('"ready"'));

    // The request went out before the gateway was up, and still got the gateway's own refusal.
    expect(sentAt).toBeLessThan(ready.at);
    expect(response).toMatch(/^HTTP\/1\.1 403/);
    expect(response).toContain('refused.invalid');
    expect(JSON.parse(ready.text)).toMatchObject({
      t: 'ready',
      proxy_port: proxyPort,
      credential_port: credentialPort,
    });
  });

  it('answers on the credential port it bound, too', async () => {
    const [proxyPort, credentialPort] = [await freePort(), await freePort()];
    const gateway = launch([String(proxyPort), String(credentialPort)], writeConfig(proxyPort, credentialPort));
    await gateway.nextLine((t) => t.includes('"listening"'));
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(credentialPort, '127.0.0.1', () =>
        socket.write('GET /no-route/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let body = '';
      socket.on('data', (chunk) => (body += chunk.toString()));
      socket.on('end', () => resolve(body));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 4\d\d/);
  });

  it('exits with a one-line reason when a port is taken', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '0.0.0.0', resolve));
    const takenPort = (taken.address() as AddressInfo).port;
    try {
      const gateway = launch([String(takenPort), String(await freePort())], writeConfig(takenPort, 1));
      expect(await gateway.exited).not.toBe(0);
      expect(gateway.stderr().trim()).toBe(`gateway: cannot bind 127.0.0.1 port ${takenPort}: Address already in use`);
      expect(gateway.lines).toEqual([]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('listens on the address it is given only: another address of this host refuses', async () => {
    const [proxyPort, credentialPort] = [await freePort(), await freePort()];
    const gateway = launch([String(proxyPort), String(credentialPort)], writeConfig(proxyPort, credentialPort));
    await gateway.nextLine((t) => t.includes('"ready"'));
    // 127.0.0.2 is this host too (all of 127/8 is loopback): a socket bound to every interface would answer it.
    for (const port of [proxyPort, credentialPort]) {
      expect(await connectOutcome('127.0.0.1', port)).toBe('connected');
      expect(await connectOutcome('127.0.0.2', port)).toBe('ECONNREFUSED');
    }
  });

  it('refuses to start without an address to listen on, or with the any-address', async () => {
    for (const address of [null, '', '0.0.0.0', 'gateway', '10.0.0.256']) {
      const gateway = launch(['3128', '3129'], writeConfig(1, 2), address);
      expect({ address, code: await gateway.exited }).toEqual({ address, code: 255 });
      expect(gateway.stderr()).toMatch(/^gateway: GATEWAY_LISTEN_ADDRESS must be the gateway's internal IPv4 address/);
      expect(gateway.lines).toEqual([]);
    }
  });

  it('refuses arguments that are not two ports', async () => {
    for (const args of [['3128'], ['3128', 'x'], ['0', '3129'], ['3128', '70000']]) {
      const gateway = launch(args, writeConfig(1, 2));
      expect({ args, code: await gateway.exited }).toEqual({ args, code: 255 });
      expect(gateway.stderr()).toMatch(/^gateway: (usage|invalid port)/);
    }
  });

  it('stops the gateway when the sockets it inherited are not on the configured ports', async () => {
    const [proxyPort, credentialPort] = [await freePort(), await freePort()];
    const gateway = launch(
      [String(proxyPort), String(credentialPort)],
      writeConfig(proxyPort + 1 === credentialPort ? proxyPort + 2 : proxyPort + 1, credentialPort),
    );
    expect(await gateway.exited).toBe(1);
    expect(gateway.stderr()).toMatch(
      /gateway: failed to start: the inherited socket listens on port \d+, but the config says \d+/,
    );
  });
});
