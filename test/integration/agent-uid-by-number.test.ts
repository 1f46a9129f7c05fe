import type Docker from 'dockerode';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentContainerSpec } from '../../src/effects/docker/containers.js';
import type { NetworkLayout } from '../../src/machines/index.js';
import { sweepIdentity, testDocker, testIdentity, testPlan, TEST_BASE_IMAGE } from '../support/docker.js';

/**
 * An approved Dockerfile can rewrite /etc/passwd. This image maps the name
 * `node` to uid 0 (and has no uid 1000 at all): the agent must still run as
 * uid 1000, because the container is given a number, never a name.
 */
const NODE_IS_ROOT_IMAGE = 'claude-bottle-test/node-is-root:1';
const docker: Docker = testDocker();
const identity = testIdentity('uidn');

async function ensureNodeIsRootImage(): Promise<void> {
  const pack = tar.pack();
  pack.entry(
    { name: 'Dockerfile' },
    `FROM ${TEST_BASE_IMAGE}\n` +
      `RUN echo 'node:x:0:0:root in disguise:/home/node:/bin/sh' >> /etc/passwd && mkdir -p /home/node\n`,
  );
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
    t: NODE_IS_ROOT_IMAGE,
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
      const failure = err?.message ?? output?.find((o) => o.error)?.error;
      if (failure) reject(new Error(`building ${NODE_IS_ROOT_IMAGE} failed: ${failure}`));
      else resolve();
    });
  });
}

beforeAll(ensureNodeIsRootImage, 300_000);
afterAll(() => sweepIdentity(docker, identity));

describe('the agent user', () => {
  it('is uid 1000 even in an image whose /etc/passwd makes node root', async () => {
    const plan = testPlan(identity, { command: ['sh', '-c', 'id -u; id -g; id -un 2>/dev/null || true'] });
    // The real spec, on no network: only who the process runs as is under test here.
    const network = { internal: { name: 'none' }, addresses: {} } as unknown as NetworkLayout;
    const spec = agentContainerSpec(plan, { env: {}, network, image: NODE_IS_ROOT_IMAGE });
    spec.HostConfig = { ...spec.HostConfig, NetworkMode: 'none', Sysctls: {} };
    delete spec.NetworkingConfig;
    const container = await docker.createContainer(spec);
    await container.start();
    await container.wait();
    const output = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
    // A terminal container's log is the raw terminal output: lines end in CR LF.
    const [uid, gid] = output.trim().split(/\r?\n/);
    expect({ uid, gid }).toEqual({ uid: '1000', gid: '1000' });
    expect(output).not.toMatch(/\bnode\b/);
  });
});
