import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureImage } from '../../src/effects/docker/images.js';
import { buildBehindGateway, proxiedRequestRun, startBridgeListener } from '../support/build-egress.js';
import { sweepIdentity, testDocker, testIdentity } from '../support/docker.js';

const docker = testDocker();
const identity = testIdentity('buildgw');
const tags: string[] = [];
let target: Awaited<ReturnType<typeof startBridgeListener>>;

beforeAll(async () => {
  target = await startBridgeListener(docker, identity);
});

afterEach(async () => {
  for (const tag of tags.splice(0))
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
});

afterAll(async () => {
  await sweepIdentity(docker, identity);
});

describe('image builds reach the network only through a build gateway', () => {
  it('fails a RUN that connects directly, and leaves no build gateway or network behind', async () => {
    const attempt = await buildBehindGateway(
      docker,
      identity,
      `FROM debian:bookworm-slim\nRUN bash -c 'exec 3<>/dev/tcp/${target.ip}/${target.port}' && echo leaked\n`,
      // No gateway image under this tag: the gateway program runs on the gateway image's base.
      { gatewayImage: `claude-bottle/gateway:absent-${identity}` },
    );
    tags.push(attempt.tag);
    expect(attempt.built).toBe(false);
    // The build ran and its RUN step failed: not a gateway that never came up.
    expect(attempt.error).toMatch(/failed at "Step 2\/\d+ : RUN bash -c .exec 3<>\/dev\/tcp/);
    expect(await target.accepted()).toBe(0);
    expect(attempt.leftovers).toEqual([]);
  });

  it('records a proxied fetch of an allowlisted host and refuses (and records) an unlisted one', async () => {
    const attempt = await buildBehindGateway(
      docker,
      identity,
      [
        'FROM debian:bookworm-slim',
        proxiedRequestRun('HEAD', 'http://deb.debian.org/debian/dists/bookworm/Release'),
        proxiedRequestRun('GET', 'http://blocked.invalid/canary'),
        '',
      ].join('\n'),
    );
    tags.push(attempt.tag);
    expect(attempt.error).toBeNull();
    const seen = attempt.decisions.map((d) => `${d.decision} ${d.method} ${d.host}:${d.port}`);
    expect(seen).toContain('allowed HEAD deb.debian.org:80');
    expect(seen.some((s) => s.startsWith('denied GET blocked.invalid:80'))).toBe(true);
    expect(attempt.leftovers).toEqual([]);
  });

  it('starts no build gateway for an image that already exists', async () => {
    const attempt = await buildBehindGateway(docker, identity, 'FROM debian:bookworm-slim\nRUN true\n');
    tags.push(attempt.tag);
    expect(attempt.built).toBe(true);
    // The existing tag is all a cache hit looks at: neither the sources nor the gateway are read.
    const src = { name: 'cached', dockerfile: 'unused', builtin: false, dockerfileInContext: 'Dockerfile', files: [] };
    const plan = { tag: attempt.tag, context_hash: 'unused', dockerfile: 'unused', builtin: false };
    const again = await ensureImage(docker, src, plan, {
      egress: {
        identity,
        agent: 'buildgw',
        allow: [],
        extraHosts: {},
        gatewayImage: 'claude-bottle/gateway:absent',
        gatewaySource: () => {
          throw new Error('a cache hit started a build gateway');
        },
        onDecision: () => undefined,
      },
    });
    expect(again).toEqual({ tag: attempt.tag, cached: true });
  });
});
