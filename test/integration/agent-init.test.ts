/**
 * The agent container's init program (src/agent-init/wait-for-proxy.c, built
 * into dist/agent-init): first as a process on this host, talking only to
 * 127.0.0.1, then as the first program of a real container made from the
 * test's own image.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_INIT_PATH, agentInitEntry, agentLaunch } from '../../src/effects/docker/agent-init.js';
import { putEntries } from '../../src/effects/docker/provision.js';
import { REPO } from '../support/cli-harness.js';
import { ensureToolsImage, testDocker, testIdentity, testLabels, TEST_TOOLS_IMAGE } from '../support/docker.js';

const INIT = join(REPO, 'dist', 'agent-init', 'wait-for-proxy');

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
}

const children: ChildProcess[] = [];

function runInit(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(INIT, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? -1 : -2))));
  return { child, output: () => output, exited };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A listener that records, per connection, how many bytes the peer sent before closing. */
async function countingServer(port: number): Promise<{ server: Server; received: number[] }> {
  const received: number[] = [];
  const server = createServer((socket: Socket) => {
    let bytes = 0;
    socket.on('data', (b: Buffer) => (bytes += b.length));
    socket.on('close', () => received.push(bytes));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, received };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
    }
  }
});

describe('wait-for-proxy as a process', () => {
  it('holds the command back until the proxy in HTTPS_PROXY accepts, probing without sending a byte', async () => {
    const port = await freePort();
    const run = runInit(['sh', '-c', 'echo ran'], { HTTPS_PROXY: `http://127.0.0.1:${port}/`, HTTP_PROXY: 'http://127.0.0.1:1' });
    await sleep(600);
    expect(run.child.exitCode).toBeNull();
    expect(run.output()).toBe('');

    const { server, received } = await countingServer(port);
    try {
      expect(await run.exited).toBe(0);
      expect(run.output()).toBe('ran\n');
      await sleep(100);
      expect(received).toEqual([0]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('falls back to HTTP_PROXY, and runs at once when the proxy already listens', async () => {
    const port = await freePort();
    const { server } = await countingServer(port);
    try {
      const run = runInit(['sh', '-c', 'exit 7'], { HTTP_PROXY: `http://127.0.0.1:${port}` });
      expect(await run.exited).toBe(7);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('runs the command at once when no proxy is named, with its arguments and exit status intact', async () => {
    const run = runInit(['sh', '-c', 'printf "%s|" "$0" "$1"; exit 3', 'zero', 'one two']);
    expect(await run.exited).toBe(3);
    expect(run.output()).toBe('zero|one two|');
  });

  it('says which command it cannot run and exits 127, like a shell', async () => {
    const run = runInit(['no-such-command-here']);
    expect(await run.exited).toBe(127);
    expect(run.output()).toMatch(/^claude-bottle: cannot run no-such-command-here: No such file or directory\n$/);
  });

  it('leaves with 128+N when signal N arrives while it waits', async () => {
    const port = await freePort();
    const run = runInit(['sh', '-c', 'echo ran'], { HTTPS_PROXY: `http://127.0.0.1:${port}` });
    await sleep(200);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(143);
    expect(run.output()).toBe('');
  });
});

describe('wait-for-proxy as the first program of a container', () => {
  const docker: Docker = testDocker();
  const identity = testIdentity('init');
  const imageTag = `claude-bottle-test/entrypoint-${identity}:1`;
  const made: Docker.Container[] = [];

  beforeAll(async () => {
    await ensureToolsImage(docker);
    // An image with an entrypoint of its own, which the launch must keep.
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, `FROM ${TEST_TOOLS_IMAGE}\nENTRYPOINT ["/bin/sh", "-c", "echo \\"entrypoint pid=$$ args=$*\\"; exec \\"$@\\"", "entry"]\nCMD ["echo", "image-default"]\n`);
    pack.finalize();
    const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, { t: imageTag, rm: true, forcerm: true });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
        const failure = err?.message ?? out?.find((o) => o.error)?.error;
        if (failure) reject(new Error(failure));
        else resolve();
      }),
    );
  }, 120_000);

  afterAll(async () => {
    for (const container of made) await container.remove({ force: true }).catch(() => undefined);
    await docker
      .getImage(imageTag)
      .remove({ force: true })
      .catch(() => undefined);
  });

  async function runContainer(command: string[]): Promise<{ code: number; logs: string; launch: Awaited<ReturnType<typeof agentLaunch>> }> {
    const launch = await agentLaunch(docker, imageTag, command);
    const container = await docker.createContainer({
      Image: imageTag,
      Entrypoint: launch.entrypoint,
      Cmd: launch.cmd,
      User: '1000:1000',
      Labels: testLabels(identity, 'agent'),
      HostConfig: { NetworkMode: 'none', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges:true'] },
    });
    made.push(container);
    await putEntries(container, [agentInitEntry()]);
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = ((await container.logs({ stdout: true, stderr: true })) as Buffer).toString('latin1');
    return { code: StatusCode, logs, launch };
  }

  it("keeps the image's entrypoint, runs as the agent's user, and hands pid 1 to the command", async () => {
    const { code, logs, launch } = await runContainer(['sh', '-c', 'echo "command pid=$$ uid=$(id -u)"; exit 5']);
    expect(launch.entrypoint[0]).toBe(AGENT_INIT_PATH);
    expect(code).toBe(5);
    expect(logs).toContain('entrypoint pid=1 args=sh -c');
    expect(logs).toContain('command pid=1 uid=1000');
  });

  it("falls back to the image's default command when the plan has none", async () => {
    const { code, logs, launch } = await runContainer([]);
    expect(launch.cmd).toEqual(['echo', 'image-default']);
    expect(code).toBe(0);
    expect(logs).toContain('image-default');
  });
});
