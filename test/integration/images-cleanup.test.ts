import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSupersededImages, removeImages } from '../../src/effects/docker/images-cleanup.js';
import { formatBytes } from '../../src/shared/format-bytes.js';
import { CREATED_BY, LABELS } from '../../src/shared/names.js';

/**
 * Superseded-image cleanup against the real daemon, on throwaway images this
 * file builds in a repository of its own (FROM the local base image, nothing
 * pulled). Every scan is scoped to that repository, so no other image on the
 * daemon is ever a candidate, and afterAll removes only the tags built here.
 */
const docker = new Docker();
const repository = `claude-bottle/cleanup-test-${randomBytes(4).toString('hex')}`;
const tag = (name: string) => `${repository}:${name}`;
const ours = (t: string) => t.startsWith(`${repository}:`);
const built: string[] = [];
const containers: string[] = [];
const BLOB_BYTES = 4_000_000;

function build(name: string): void {
  const dockerfile = `FROM debian:bookworm-slim\nRUN head -c ${BLOB_BYTES} /dev/urandom > /blob-${name}\n`;
  execFileSync('docker', ['build', '-q', '-t', tag(name), '--label', `${LABELS.createdBy}=${CREATED_BY}`, '-'], {
    input: dockerfile,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  built.push(tag(name));
}

const exists = async (t: string) =>
  docker
    .getImage(t)
    .inspect()
    .then(() => true)
    .catch(() => false);

beforeAll(async () => {
  // Built a second apart: the daemon records creation times in whole seconds, and "newest" compares them.
  for (const name of ['v0', 'v1', 'v2', 'v3']) {
    build(name);
    await new Promise((r) => setTimeout(r, 1100));
  }
}, 300_000);

afterAll(async () => {
  for (const id of containers)
    await docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);
  for (const t of built)
    await docker
      .getImage(t)
      .remove({ force: true })
      .catch(() => undefined);
});

describe('superseded claude-bottle images', () => {
  it('lists the old ones that no bottle uses, keeping the newest, the ones in use and the ones asked for', async () => {
    const scan = await findSupersededImages(docker, { inUse: [tag('v0')], keep: [tag('v2')], scope: ours });
    expect(scan.superseded.map((i) => i.tag)).toEqual([tag('v1')]);
    expect(Object.fromEntries(scan.kept.map((k) => [k.image.tag, k.why]))).toEqual({
      [tag('v0')]: 'in use',
      [tag('v2')]: 'kept',
      [tag('v3')]: 'newest',
    });
    // The blob layer is the one thing v1 has of its own.
    expect(scan.reclaimableAtLeast).toBeGreaterThanOrEqual(BLOB_BYTES);
    expect(scan.superseded[0].size).toBeGreaterThan(scan.superseded[0].uniqueSize);
  });

  it('skips an image a container still uses instead of forcing it', async () => {
    const labels = { [LABELS.createdBy]: 'cleanup-test' };
    const container = await docker.createContainer({ Image: tag('v1'), Cmd: ['true'], Labels: labels });
    containers.push(container.id);
    const scan = await findSupersededImages(docker, { inUse: [tag('v0')], keep: [tag('v2')], scope: ours });
    const removal = await removeImages(docker, scan.superseded);
    expect(removal.removed).toEqual([]);
    expect(removal.skipped.map((s) => [s.image.tag, s.reason])).toEqual([[tag('v1'), 'a container uses it']]);
    expect(await exists(tag('v1'))).toBe(true);
    await container.remove({ force: true });
    containers.splice(containers.indexOf(container.id), 1);
  });

  it('removes only the superseded ones and reports the space freed', async () => {
    const scan = await findSupersededImages(docker, { inUse: [tag('v0')], keep: [tag('v2')], scope: ours });
    const removal = await removeImages(docker, scan.superseded);
    expect(removal.removed.map((i) => i.tag)).toEqual([tag('v1')]);
    expect(removal.skipped).toEqual([]);
    expect(removal.bytesFreed).toBeGreaterThanOrEqual(BLOB_BYTES);
    expect(await exists(tag('v1'))).toBe(false);
    for (const name of ['v0', 'v2', 'v3']) expect(await exists(tag(name))).toBe(true);
    // A second run finds nothing left to do.
    const again = await findSupersededImages(docker, { inUse: [tag('v0')], keep: [tag('v2')], scope: ours });
    expect(again.superseded).toEqual([]);
  });

  it('formats sizes as docker images does', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(4_000_000)).toBe('4.0 MB');
    expect(formatBytes(358_727_952)).toBe('359 MB');
    expect(formatBytes(1_210_851_999)).toBe('1.2 GB');
  });
});
