import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import tar from 'tar-stream';
import type { BottlePlan } from '../../src/plan/schema.js';
import { CREATED_BY, LABELS, resourceNames } from '../../src/shared/names.js';
import { statusOf } from '../../src/effects/docker/client.js';

/**
 * Test-only helpers for the Docker integration tests: a tiny image with a TCP
 * listener (socat) and iptables, unique identities, and a sweeper that removes
 * everything a test labelled, even when the test failed half-way.
 */

export const TEST_BASE_IMAGE = 'debian:bookworm-slim';
export const TEST_TOOLS_IMAGE = 'claude-bottle-test/socat:1';

const TOOLS_DOCKERFILE = `FROM ${TEST_BASE_IMAGE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends socat iptables \\
 && rm -rf /var/lib/apt/lists/*
`;

export function testDocker(): Docker {
  return new Docker();
}

/** `t<agent>-<5 chars>`: a valid identity no other engineer's test will mint. */
export function testIdentity(agent = 'dockt'): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  const bytes = randomBytes(5);
  let suffix = '';
  for (const b of bytes) suffix += alphabet[b % alphabet.length];
  return `${agent}-${suffix}`;
}

async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

/** Builds `claude-bottle-test/socat:1` once (socat for listeners, iptables for the host guard); reused when present. */
export async function ensureToolsImage(docker: Docker): Promise<string> {
  if (await imageExists(docker, TEST_TOOLS_IMAGE)) return TEST_TOOLS_IMAGE;
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, TOOLS_DOCKERFILE);
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
    t: TEST_TOOLS_IMAGE,
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
      const failure = err?.message ?? output?.find((o) => o.error)?.error;
      if (failure) reject(new Error(`building ${TEST_TOOLS_IMAGE} failed: ${failure}`));
      else resolve();
    });
  });
  return TEST_TOOLS_IMAGE;
}

/** Runs a command in a container and returns its exit code and combined output. */
export async function execIn(
  container: Docker.Container,
  cmd: string[],
  opts: { user?: string; env?: string[] } = {},
): Promise<{ code: number; output: string }> {
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
    User: opts.user,
    Env: opts.env,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  container.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
}

/**
 * Removes every container and network carrying this identity's label;
 * used in afterEach so failures leave nothing behind.
 */
export async function sweepIdentity(docker: Docker, identity: string): Promise<void> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const containers = await docker.listContainers({ all: true, filters });
  for (const c of containers) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  }
  const networks = await docker.listNetworks({ filters });
  for (const n of networks) {
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
  }
}

/** What a daemon holds of a bottle, found by its identity label: its containers (by role) and networks (by name). */
export async function held(docker: Docker, identity: string): Promise<{ containers: string[]; networks: string[] }> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const containers = await docker.listContainers({ all: true, filters });
  const networks = await docker.listNetworks({ filters });
  return {
    containers: containers.map((c) => c.Labels[LABELS.role] ?? c.Names[0]).sort(),
    networks: networks.map((n) => n.Name).sort(),
  };
}

/**
 * Labels that mark a test-made resource as a claude-bottle one, for containers the test creates outside the effects.
 */
export function testLabels(identity: string, role: string): Record<string, string> {
  return {
    [LABELS.createdBy]: CREATED_BY,
    [LABELS.identity]: identity,
    [LABELS.agent]: identity.split('-')[0],
    [LABELS.role]: role,
  };
}

/** A complete plan for tests that drive the container specs with stand-in images. */
export function testPlan(identity: string, overrides: Partial<BottlePlan> = {}): BottlePlan {
  const names = resourceNames(identity);
  const agent = identity.split('-')[0];
  const image = { tag: TEST_TOOLS_IMAGE, context_hash: 'test', dockerfile: 'builtin:agent', builtin: true };
  return {
    identity,
    agent,
    bottle: 'test',
    image,
    gateway_image: { ...image, dockerfile: 'builtin:gateway' },
    runtime: 'runc',
    networks: { internal: names.internalNetwork, egress: names.egressNetwork },
    containers: { gateway: names.gatewayContainer, agent: names.agentContainer },
    hosts: [],
    default_hosts: [],
    extra_hosts: {},
    mounts: [],
    env_names: [],
    credentials: [],
    ssh: [],
    skills: [],
    prompt: null,
    command: ['sleep', 'infinity'],
    args: [],
    cwd: '/tmp',
    copy_cwd: true,
    limits: { memory: '256m', cpus: 1, pids: 256 },
    host: 'test-host',
    manifest_path: '/dev/null',
    ...overrides,
  };
}

/**
 * Stands in for both built images in handler tests: it has a `node` user
 * (uid 1000) like the agent image, and its default command behaves like the
 * gateway's output contract: a ready line, two numbered decisions, then a
 * TCP listener on the proxy port.
 */
export const TEST_STANDIN_IMAGE = 'claude-bottle-test/standin:2';

const STANDIN_ALLOWED = JSON.stringify({
  t: 'egress',
  n: 1,
  decision: 'allowed',
  host: 'registry.npmjs.org',
  port: 443,
  method: 'CONNECT',
  reason: 'allowlisted',
  at: '2026-01-01T00:00:00Z',
});
const STANDIN_DENIED = JSON.stringify({
  t: 'egress',
  n: 2,
  decision: 'denied',
  host: 'blocked.test',
  port: 443,
  method: 'CONNECT',
  reason: 'not_in_allowlist',
  at: '2026-01-01T00:00:01Z',
});
const STANDIN_CAPABILITY = JSON.stringify({
  t: 'capability',
  n: 3,
  request_id: 'req-1',
  kind: 'egress',
  host: 'blocked.test',
  port: 443,
  dockerfile: null,
  reason: 'needs it',
  at: '2026-01-01T00:00:02Z',
});

const STANDIN_GATEWAY_SCRIPT = `#!/bin/sh
socat TCP-LISTEN:3128,fork,reuseaddr SYSTEM:'echo gateway' &
sleep 0.2
echo '{"t":"ready","proxy_port":3128,"credential_port":3129}'
echo '${STANDIN_ALLOWED}'
echo '${STANDIN_DENIED}'
sleep 2
echo '${STANDIN_CAPABILITY}'
wait
`;

export async function ensureStandInImage(docker: Docker): Promise<string> {
  if (await imageExists(docker, TEST_STANDIN_IMAGE)) return TEST_STANDIN_IMAGE;
  await ensureToolsImage(docker);
  const pack = tar.pack();
  pack.entry(
    { name: 'Dockerfile' },
    `FROM ${TEST_TOOLS_IMAGE}
RUN useradd --create-home --uid 1000 --user-group node
COPY gateway.sh /usr/local/bin/standin-gateway
CMD ["/usr/local/bin/standin-gateway"]
`,
  );
  pack.entry({ name: 'gateway.sh', mode: 0o755 }, STANDIN_GATEWAY_SCRIPT);
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
    t: TEST_STANDIN_IMAGE,
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
      const failure = err?.message ?? output?.find((o) => o.error)?.error;
      if (failure) reject(new Error(`building ${TEST_STANDIN_IMAGE} failed: ${failure}`));
      else resolve();
    });
  });
  return TEST_STANDIN_IMAGE;
}
