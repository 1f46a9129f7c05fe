import type Docker from 'dockerode';
import { request } from 'node:http';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { statusOf } from '../../src/effects/docker/client.js';
import { demuxLogBuffer } from '../../src/effects/docker/logs.js';
import { generatePipelockConfig, PIPELOCK_LISTEN_PORT } from '../../src/effects/pipelock/config.js';
import { pipelockContainerSpec } from '../../src/effects/pipelock/pipelock-container.js';
import { parsePipelockLogLine, type PipelockDecision } from '../../src/effects/pipelock/log-line.js';
import { waitForPipelockReady } from '../../src/effects/pipelock/ready.js';
import { resourceNames } from '../../src/shared/names.js';
import { ensureToolsImage, sweepIdentity, testDocker, testIdentity, testLabels, testPlan } from '../support/docker.js';

/**
 * pipelock itself, run with the config we generate, deciding real requests.
 * It needs the pipelock image on the daemon; nothing can be pulled here, so
 * without it the test is skipped and says so (no stand-in pretends to be
 * pipelock). Traffic goes only from this process to containers on a network
 * this test creates; both `.test` names resolve (via the bottle's
 * extra_hosts) to a local socat responder.
 */
const PIPELOCK_IMAGE = process.env.PIPELOCK_IMAGE ?? 'ghcr.io/luckypipewrench/pipelock:latest';
const docker = testDocker();

async function imagePresent(client: Docker, image: string): Promise<{ present: boolean; why: string }> {
  try {
    await client.getImage(image).inspect();
    return { present: true, why: '' };
  } catch (err) {
    if (statusOf(err) === 404)
      return {
        present: false,
        why: `pipelock image ${image} not present on this daemon; runtime test skipped (nothing can be pulled here)`,
      };
    return {
      present: false,
      why: `Docker daemon not reachable (${(err as Error).message}); pipelock runtime test skipped`,
    };
  }
}

const availability = await imagePresent(docker, PIPELOCK_IMAGE);
if (!availability.present) console.warn(availability.why);

/** One proxied plain-HTTP request from this process to pipelock: absolute URI, as an HTTP_PROXY client sends it. */
function viaProxy(proxyIp: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request(
      {
        host: proxyIp,
        port: PIPELOCK_LISTEN_PORT,
        method: 'GET',
        path: url,
        headers: { host: target.host },
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`proxied request to ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The container's address on `network`, as Docker assigned it. */
async function addressOn(container: Docker.Container, network: string): Promise<string> {
  const ip = (await container.inspect()).NetworkSettings.Networks[network]?.IPAddress;
  if (!ip) throw new Error(`container ${container.id} has no address on ${network}`);
  return ip;
}

async function decisions(container: Docker.Container): Promise<PipelockDecision[]> {
  const raw = (await container.logs({ follow: false, stdout: true, stderr: true })) as unknown as Buffer;
  return demuxLogBuffer(raw)
    .stdout.split('\n')
    .map(parsePipelockLogLine)
    .filter((d): d is PipelockDecision => d !== null);
}

/**
 * The spec's hardening, held by a real container whatever image runs in it:
 * this borrows the test tools image with its command replaced, and checks
 * only what Docker enforces (uid, capabilities, read-only root, read-only
 * config mount); it says nothing about pipelock's behaviour.
 */
describe('pipelock container spec under Docker', () => {
  const identity = testIdentity('plkspec');
  let tempDir: string | undefined;

  afterAll(async () => {
    await sweepIdentity(docker, identity).catch(() => undefined);
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  });

  it('runs unprivileged with no capabilities, a read-only root and a readable, read-only config', async () => {
    const names = resourceNames(identity);
    await docker.createNetwork({
      Name: names.egressNetwork,
      Driver: 'bridge',
      Labels: testLabels(identity, 'egress-network'),
    });
    const plan = testPlan(identity, { hosts: ['allowed.test:80'], default_hosts: [] });
    tempDir = await mkdtemp(join(tmpdir(), 'cb-pipelock-spec-'));
    const configPath = join(tempDir, 'pipelock.yaml');
    await writeFile(configPath, generatePipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT }));
    await chmod(configPath, 0o644);

    const spec = pipelockContainerSpec(plan, await ensureToolsImage(docker), configPath);
    const probe = [
      // The emitter may quote keys and values: match `mode: strict` in either spelling.
      'grep -Eq \'^"?mode"?: "?strict"?$\' /etc/pipelock/pipelock.yaml && echo config-readable',
      'touch /etc/pipelock/pipelock.yaml 2>/dev/null || echo config-readonly',
      'touch /probe 2>/dev/null || echo root-readonly',
      'touch /tmp/probe && echo tmp-writable',
      'echo uid=$(id -u)',
      'grep CapEff /proc/self/status',
    ].join('; ');
    const container = await docker.createContainer({ ...spec, Entrypoint: ['sh', '-c'], Cmd: [probe] });
    await container.start();
    const exit = (await container.wait()) as { StatusCode: number };
    const { stdout, stderr } = demuxLogBuffer(
      (await container.logs({ follow: false, stdout: true, stderr: true })) as unknown as Buffer,
    );
    expect(exit.StatusCode, stderr).toBe(0);
    expect(stdout).toContain('config-readable');
    expect(stdout).toContain('config-readonly');
    expect(stdout).toContain('root-readonly');
    expect(stdout).toContain('tmp-writable');
    expect(stdout).toContain('uid=65534');
    expect(stdout).toMatch(/CapEff:\s*0+\s/);
  });
});

describe('pipelock as the egress hop', () => {
  const identity = testIdentity('plk');
  let tempDir: string | undefined;

  afterAll(async () => {
    if (!availability.present) return;
    await sweepIdentity(docker, identity);
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  });

  if (!availability.present) {
    it.skip(availability.why, () => {});
    return;
  }

  it('passes an allowlisted .test host and refuses one that is not listed, logging both decisions', async () => {
    const names = resourceNames(identity);
    await docker.createNetwork({
      Name: names.egressNetwork,
      Driver: 'bridge',
      Labels: testLabels(identity, 'egress-network'),
    });

    const toolsImage = await ensureToolsImage(docker);
    const upstreamName = `cb-${identity}-upstream`;
    const upstream = await docker.createContainer({
      name: upstreamName,
      Image: toolsImage,
      Cmd: [
        'socat',
        'TCP-LISTEN:80,fork,reuseaddr',
        'SYSTEM:printf "HTTP/1.1 200 OK\\r\\nContent-Length: 8\\r\\nConnection: close\\r\\n\\r\\nupstream"',
      ],
      Labels: testLabels(identity, 'upstream'),
      HostConfig: { NetworkMode: names.egressNetwork, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges:true'] },
    });
    await upstream.start();
    const upstreamIp = await addressOn(upstream, names.egressNetwork);

    const plan = testPlan(identity, {
      hosts: ['allowed.test:80'],
      default_hosts: [],
      extra_hosts: { 'allowed.test': upstreamIp, 'denied.test': upstreamIp },
      egress: { proxy: 'pipelock', pipelock_image: PIPELOCK_IMAGE },
    });
    tempDir = await mkdtemp(join(tmpdir(), 'cb-pipelock-'));
    const configPath = join(tempDir, 'pipelock.yaml');
    await writeFile(configPath, generatePipelockConfig(plan, { listenPort: PIPELOCK_LISTEN_PORT }));
    await chmod(configPath, 0o644);

    const pipelock = await docker.createContainer(pipelockContainerSpec(plan, PIPELOCK_IMAGE, configPath));
    await pipelock.start();
    await waitForPipelockReady(pipelock, { timeoutMs: 60_000 });
    const proxyIp = await addressOn(pipelock, names.egressNetwork);

    const allowed = await viaProxy(proxyIp, 'http://allowed.test/');
    expect(allowed.status).toBe(200);
    expect(allowed.body).toBe('upstream');

    const denied = await viaProxy(proxyIp, 'http://denied.test/');
    expect(denied.status).toBe(403);
    expect(denied.body).not.toContain('upstream');

    // The audit log reaches stdout a moment after the response.
    let seen: PipelockDecision[] = [];
    for (let i = 0; i < 25; i++) {
      seen = await decisions(pipelock);
      if (seen.some((d) => d.host === 'denied.test')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(seen).toContainEqual(expect.objectContaining({ decision: 'allowed', host: 'allowed.test', port: 80 }));
    expect(seen).toContainEqual(expect.objectContaining({ decision: 'denied', host: 'denied.test', port: 80 }));
  });
});
