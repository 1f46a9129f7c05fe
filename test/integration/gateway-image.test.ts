/**
 * Builds the gateway image from images/gateway/Dockerfile plus the bundled
 * gateway.cjs, runs it on a network this test creates with its config and
 * secrets copied in before start, and reads its stdout lines. The only
 * traffic is the container talking to itself. Everything made is removed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClient } from '../../src/effects/docker/client.js';
import { isSubnetTaken } from '../../src/effects/docker/networks.js';
import { GATEWAY_LISTEN_ADDRESS_ENV } from '../../src/gateway/protocol.js';
import { gatewayImageSource } from '../../src/images/sources.js';
import { subnetAddresses, subnetCandidates, subnetPool } from '../../src/shared/subnet-pool.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const suffix = randomBytes(4).toString('hex');
const tag = `claude-bottle-test/gateway:${suffix}`;
const networkName = `cb-gwtest-${suffix}`;
const containerName = `cb-gwtest-${suffix}`;
const SECRET = `sk-ant-oat01-IMAGE-TEST-SECRET-${suffix}`;
const NOBODY = 65534;

function tarOf(
  entries: Array<{ name: string; content: string | Buffer; mode?: number; uid?: number }>,
): NodeJS.ReadableStream {
  const archive = pack();
  for (const entry of entries) {
    archive.entry(
      { name: entry.name, mode: entry.mode ?? 0o644, uid: entry.uid ?? 0, gid: entry.uid ?? 0 },
      entry.content,
    );
  }
  archive.finalize();
  return archive as unknown as NodeJS.ReadableStream;
}

async function buildImage(docker: Docker): Promise<void> {
  execFileSync(process.execPath, [join(root, 'scripts/build-gateway.mjs')], { stdio: 'inherit' });
  // The same files the worker's build sends: images/gateway/* plus the bundle.
  const context = tarOf(
    gatewayImageSource().files.map((file) => ({
      name: file.path,
      content: readFileSync(file.source),
      mode: file.mode,
    })),
  );
  const stream = await docker.buildImage(context, { t: tag, rm: true, forcerm: true });
  const output = await new Promise<Array<{ error?: string; errorDetail?: { message?: string } }>>(
    (resolveBuild, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, result: Array<{ error?: string }>) =>
        err ? reject(err) : resolveBuild(result),
      ),
  );
  const failure = output.find((entry) => entry.error);
  if (failure) throw new Error(`gateway image build failed: ${failure.error}`);
}

/** Splits Docker's multiplexed log stream (8-byte frame headers) into stdout and stderr text. */
function demux(buffer: Buffer): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    const text = buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    if (buffer[offset] === 2) stderr += text;
    else stdout += text;
    offset += 8 + size;
  }
  return { stdout, stderr };
}

async function readLogs(container: Docker.Container): Promise<{ stdout: string; stderr: string }> {
  const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  return demux(raw);
}

async function waitForStdoutLine(
  container: Docker.Container,
  predicate: (line: Record<string, unknown>) => boolean,
  timeoutMs = 30_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last = { stdout: '', stderr: '' };
  while (Date.now() < deadline) {
    last = await readLogs(container);
    for (const text of last.stdout.split('\n').filter(Boolean)) {
      const line = JSON.parse(text) as Record<string, unknown>;
      if (predicate(line)) return line;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`line not seen within ${timeoutMs} ms; stdout=${last.stdout} stderr=${last.stderr}`);
}

describe('gateway image', () => {
  const docker = dockerClient();
  let container: Docker.Container | undefined;
  let network: Docker.Network | undefined;
  let imageBuilt = false;
  let gatewayAddress = '';

  beforeAll(async () => {
    await buildImage(docker);
    imageBuilt = true;
    // The gateway listens on one fixed address of its internal network, as a bottle's gateway does.
    let listenAddress = '';
    for (const subnet of subnetCandidates(subnetPool(), networkName)) {
      try {
        network = await docker.createNetwork({
          Name: networkName,
          Driver: 'bridge',
          Labels: { 'dev.claude-bottle.test': 'gateway-image' },
          IPAM: { Config: [{ Subnet: subnet }] },
        });
        listenAddress = subnetAddresses(subnet).gateway;
        break;
      } catch (err) {
        if (!isSubnetTaken(err)) throw err;
      }
    }
    container = await docker.createContainer({
      name: containerName,
      Image: tag,
      Env: [`${GATEWAY_LISTEN_ADDRESS_ENV}=${listenAddress}`],
      Labels: { 'dev.claude-bottle.test': 'gateway-image' },
      HostConfig: { NetworkMode: networkName },
      NetworkingConfig: { EndpointsConfig: { [networkName]: { IPAMConfig: { IPv4Address: listenAddress } } } },
    });
    gatewayAddress = listenAddress;
    const config = {
      identity: 'implementer-ab12c',
      proxy_port: 3128,
      credential_port: 3129,
      allow: ['allowed.test'],
      extra_hosts: {},
      routes: [{ id: 'anthropic', role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'oauth' }],
      limits: { max_header_bytes: 32768, requests_per_minute: 600 },
    };
    await container.putArchive(
      tarOf([
        { name: 'etc/claude-bottle/gateway.json', content: JSON.stringify(config), uid: NOBODY },
        {
          name: 'etc/claude-bottle/secrets.json',
          content: JSON.stringify({ anthropic: SECRET }),
          mode: 0o400,
          uid: NOBODY,
        },
      ]),
      { path: '/' },
    );
    await container.start();
  });

  afterAll(async () => {
    await container?.remove({ force: true }).catch(() => {});
    await network?.remove().catch(() => {});
    if (imageBuilt)
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => {});
  });

  it('starts as nobody and prints the listening line, then the ready line, with both ports', async () => {
    const ready = await waitForStdoutLine(container!, (line) => line.t === 'ready');
    expect(ready).toEqual({
      t: 'ready',
      proxy_port: 3128,
      credential_port: 3129,
      takes_decisions: true,
      writes_reports: true,
    });
    const lines = (await readLogs(container!)).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { t: string });
    expect(lines.slice(0, 2)).toEqual([{ t: 'listening', proxy_port: 3128, credential_port: 3129 }, ready]);
    const info = await container!.inspect();
    expect(info.Config.User).toBe('65534:65534');
  });

  it('refuses an unlisted host from inside its network and reports it on stdout', async () => {
    // A client in the container itself: the request never leaves the gateway (blocked.test is not listed).
    const script =
      `const s=require('net').connect(3128,'${gatewayAddress}',` +
      "()=>s.write('CONNECT blocked.test:443 HTTP/1.1\\r\\n\\r\\n'));" +
      "s.on('data',d=>process.stdout.write(d));";
    const exec = await container!.exec({ Cmd: ['node', '-e', script], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    await new Promise<void>((resolveExec) => {
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolveExec());
    });
    const reply = demux(Buffer.concat(chunks)).stdout;
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(reply).toContain('"error":"egress_denied"');
    const denial = await waitForStdoutLine(container!, (line) => line.t === 'egress');
    expect(denial).toMatchObject({
      t: 'egress',
      n: 1,
      decision: 'denied',
      host: 'blocked.test',
      port: 443,
      method: 'CONNECT',
      reason: 'not_in_allowlist',
    });
    const logs = await readLogs(container!);
    expect(logs.stdout + logs.stderr).not.toContain(SECRET);
  });
});
