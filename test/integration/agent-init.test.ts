/**
 * The agent container's init program (src/agent-init/wait-for-proxy.c, built
 * into dist/agent-init): first as a process on this host, talking only to
 * 127.0.0.1, then as the first program of a real container made from the
 * test's own image.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_INIT_PATH, agentInitEntry, agentLaunch } from '../../src/effects/docker/agent-init.js';
import { agentContainerSpec, ensureConnected } from '../../src/effects/docker/containers.js';
import { ensureBottleNetworks } from '../../src/effects/docker/networks.js';
import { putEntries } from '../../src/effects/docker/provision.js';
import { removeBottleResources } from '../../src/effects/docker/remove-bottle.js';
import type { NetworkLayout } from '../../src/machines/context.js';
import { subnetAddresses, subnetPool } from '../../src/shared/subnet-pool.js';
import { REPO } from '../support/cli-harness.js';
import { freePort } from '../support/upstream.js';
import {
  ensureToolsImage,
  testDocker,
  testIdentity,
  testLabels,
  testPlan,
  TEST_TOOLS_IMAGE,
} from '../support/docker.js';

const INIT = join(REPO, 'dist', 'agent-init', 'wait-for-proxy');

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
}

const children: ChildProcess[] = [];

function runInit(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(INIT, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? (signal ? -1 : -2))),
  );
  return { child, output: () => output, exited };
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
    const run = runInit(['sh', '-c', 'echo ran'], {
      HTTPS_PROXY: `http://127.0.0.1:${port}/`,
      HTTP_PROXY: 'http://127.0.0.1:1',
    });
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
    const held = runInit(['sh', '-c', 'exit 7'], { HTTP_PROXY: `http://127.0.0.1:${port}` });
    await sleep(400);
    expect(held.child.exitCode).toBeNull();
    const { server } = await countingServer(port);
    try {
      expect(await held.exited).toBe(7);
      const atOnce = runInit(['sh', '-c', 'exit 7'], { HTTP_PROXY: `http://127.0.0.1:${port}` });
      expect(await atOnce.exited).toBe(7);
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
    pack.entry(
      { name: 'Dockerfile' },
      `FROM ${TEST_TOOLS_IMAGE}\n` +
        `ENTRYPOINT ["/bin/sh", "-c", "echo \\"entrypoint pid=$$ args=$*\\"; exec \\"$@\\"", "entry"]\n` +
        `CMD ["echo", "image-default"]\n`,
    );
    pack.finalize();
    const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
      t: imageTag,
      rm: true,
      forcerm: true,
    });
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

  async function runContainer(
    command: string[],
  ): Promise<{ code: number; logs: string; launch: Awaited<ReturnType<typeof agentLaunch>> }> {
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

  it('reaches the gateway at its fixed address, absent when it first looked, soon after listen.pl binds', async () => {
    // The agent starts before the gateway has an interface on the internal network: its init's first
    // lookups of the gateway's address go unanswered. The agent's spec asks the kernel to ask again
    // every 100 ms, so once the gateway is connected at its fixed address and listens, the command runs.
    const arp = testIdentity('arp');
    const plan = testPlan(arp, { command: ['sh', '-c', 'echo reached'] });
    try {
      const networks = await ensureBottleNetworks(docker, arp, plan.agent, subnetPool());
      const { gateway: gatewayIp, agent: agentIp, pipelock } = subnetAddresses(networks.internal.subnet);
      const network: NetworkLayout = {
        internal: { name: networks.internal.name, subnet: networks.internal.subnet },
        egress: { name: networks.egress.name, subnet: networks.egress.subnet },
        addresses: { gateway: gatewayIp, agent: agentIp, pipelock },
      };
      const launch = await agentLaunch(docker, TEST_TOOLS_IMAGE, plan.command);
      const env = { HTTPS_PROXY: `http://${gatewayIp}:3128` };
      const agent = await docker.createContainer(agentContainerSpec(plan, { env, network, launch, user: '1000:1000' }));
      await putEntries(agent, [agentInitEntry()]);
      await agent.start();
      expect((await agent.inspect()).NetworkSettings.Networks[network.internal.name].IPAddress).toBe(agentIp);
      // The init has been asking for the gateway's address for a while, unanswered.
      await sleep(1500);
      expect((await agent.inspect()).State.Running).toBe(true);

      // Like the real gateway: made on the egress network, connected to the internal one at its fixed address.
      const gateway = await docker.createContainer({
        Image: TEST_TOOLS_IMAGE,
        Entrypoint: ['perl', '/opt/gateway/listen.pl'],
        Cmd: ['3128', '3129'],
        Env: ['PATH=/opt/gateway/bin:/usr/bin:/bin', `GATEWAY_LISTEN_ADDRESS=${gatewayIp}`],
        Labels: testLabels(arp, 'gateway'),
        HostConfig: { NetworkMode: network.egress.name, CapDrop: ['ALL'] },
      });
      await ensureConnected(docker, gateway.id, network.internal.name, gatewayIp);
      await putEntries(gateway, [
        {
          type: 'file',
          path: '/opt/gateway/listen.pl',
          mode: 0o755,
          uid: 0,
          gid: 0,
          content: readFileSync(join(REPO, 'images', 'gateway', 'listen.pl')),
        },
        // Stands in for the gateway's Node: holds the inherited sockets open.
        {
          type: 'file',
          path: '/opt/gateway/bin/node',
          mode: 0o755,
          uid: 0,
          gid: 0,
          content: '#!/bin/sh\nexec sleep 60\n',
        },
      ]);
      await gateway.start();
      const listening = Date.now();
      expect((await gateway.inspect()).NetworkSettings.Networks[network.internal.name].IPAddress).toBe(gatewayIp);

      const exited = (await Promise.race([agent.wait(), sleep(5000).then(() => 'still waiting')])) as
        { StatusCode: number } | string;
      expect(exited).toEqual({ StatusCode: 0, Error: null });
      expect(Date.now() - listening).toBeLessThan(3000);
      expect(((await agent.logs({ stdout: true, stderr: true })) as Buffer).toString('latin1')).toContain('reached');
    } finally {
      await removeBottleResources(docker, arp);
    }
  }, 60_000);

  it("falls back to the image's default command when the plan has none", async () => {
    const { code, logs, launch } = await runContainer([]);
    expect(launch.cmd).toEqual(['echo', 'image-default']);
    expect(code).toBe(0);
    expect(logs).toContain('image-default');
  });
});
