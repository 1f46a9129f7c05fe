/**
 * watchAttachment against the real daemon: what start_gateway relies on to
 * start the agent early. Only containers and networks this test makes, and no
 * traffic at all.
 */
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchAttachment } from '../../src/effects/docker/network-events.js';
import { ensureToolsImage, sweepIdentity, testDocker, testIdentity, testLabels, TEST_TOOLS_IMAGE } from '../support/docker.js';

const docker: Docker = testDocker();
const identity = testIdentity('nevt');
const first = `cb-${identity}-first`;
const second = `cb-${identity}-second`;

beforeAll(async () => {
  await ensureToolsImage(docker);
  for (const name of [first, second]) await docker.createNetwork({ Name: name, Internal: true, Labels: testLabels(identity, 'network') });
}, 120_000);

afterAll(async () => {
  await sweepIdentity(docker, identity);
});

const settled = <T>(promise: Promise<T>, ms: number) => Promise.race([promise.then(() => 'resolved' as const), new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);

describe('watchAttachment', () => {
  it('resolves when a starting container joins the network, not when a created one is connected to it', async () => {
    const container = await docker.createContainer({ Image: TEST_TOOLS_IMAGE, Cmd: ['sleep', '60'], Labels: testLabels(identity, 'probe'), HostConfig: { NetworkMode: first } });
    const watch = await watchAttachment(docker, { network: second, container: container.id });
    try {
      await docker.getNetwork(second).connect({ Container: container.id });
      expect(await settled(watch.attached, 500)).toBe('pending');

      await container.start();
      expect(await settled(watch.attached, 5000)).toBe('resolved');
    } finally {
      watch.close();
    }
  });

  it('ignores other containers joining the same network', async () => {
    const watched = await docker.createContainer({ Image: TEST_TOOLS_IMAGE, Cmd: ['sleep', '60'], Labels: testLabels(identity, 'watched'), HostConfig: { NetworkMode: second } });
    const other = await docker.createContainer({ Image: TEST_TOOLS_IMAGE, Cmd: ['sleep', '60'], Labels: testLabels(identity, 'other'), HostConfig: { NetworkMode: second } });
    const watch = await watchAttachment(docker, { network: second, container: watched.id });
    try {
      await other.start();
      expect(await settled(watch.attached, 500)).toBe('pending');
      await watched.start();
      expect(await settled(watch.attached, 5000)).toBe('resolved');
    } finally {
      watch.close();
    }
  });
});
