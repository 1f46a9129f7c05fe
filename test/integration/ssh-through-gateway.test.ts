import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { utils } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { resourceNames } from '../../src/shared/names.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../support/cli-harness.js';
import { execIn, TEST_BASE_IMAGE } from '../support/docker.js';

/**
 * SSH from a bottle goes out through its gateway and signs with a key the
 * gateway holds (issue 13 item 5). The server is a test-owned sshd with a git
 * repository, in a container on a test-owned network that the bottle's
 * gateway is connected to once it runs (an egress-side network: the agent has
 * no route to it), reached as `git.test` pinned to its address.
 */

const SSHD_IMAGE = 'claude-bottle-test/sshd:1';
const README = 'hello through the gateway';
const TEST_ROLE_LABEL = 'dev.claude-bottle-test.role';

const SSHD_DOCKERFILE = `FROM ${TEST_BASE_IMAGE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server git \\
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --shell /bin/bash -p '*' git \\
 && mkdir -p /run/sshd /home/git/.ssh && chmod 700 /home/git/.ssh \\
 && git init -q --bare -b main /repo \\
 && git init -q -b main /tmp/seed && cd /tmp/seed && echo '${README}' > README \\
 && git add README && git -c user.name=t -c user.email=t@t.test commit -q -m seed \\
 && git push -q /repo main && cd / && rm -rf /tmp/seed \\
 && chown -R git:git /repo /home/git \\
 && ssh-keygen -A
`;

async function ensureSshdImage(docker: Docker): Promise<void> {
  try {
    await docker.getImage(SSHD_IMAGE).inspect();
    return;
  } catch {
    // not built yet
  }
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, SSHD_DOCKERFILE);
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
    t: SSHD_IMAGE,
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
      const failure = err?.message ?? output?.find((o) => o.error)?.error;
      if (failure) reject(new Error(`building ${SSHD_IMAGE} failed: ${failure}`));
      else resolve();
    });
  });
}

let h: BottleHarness;
let network: Docker.Network | undefined;
let sshd: Docker.Container | undefined;
let sshdIp: string;
let manifest: string;
let keyPair: { private: string; public: string };
/** Lines of the private key's body that hold the private part: if the key were anywhere, they would be found. */
let keyMarkers: string[];
let workdir: string;

async function sshdConnections(): Promise<number> {
  const logs = ((await sshd!.logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('latin1');
  return logs.split('\n').filter((line) => line.includes('Connection from')).length;
}

beforeAll(async () => {
  h = await startHarness();
  await ensureSshdImage(h.docker);
  const suffix = randomBytes(4).toString('hex');
  network = await h.docker.createNetwork({
    Name: `cbtest-ssh-${suffix}`,
    Driver: 'bridge',
    Labels: { [TEST_ROLE_LABEL]: 'ssh' },
  });
  keyPair = utils.generateKeyPairSync('ed25519', { comment: 'bottle-test' });
  keyMarkers = keyPair.private.trim().split('\n').slice(1, -1).slice(3, 5);
  expect(keyMarkers.every((line) => line.length === 64)).toBe(true);
  // An empty working folder, so that every file the agent can see is searched for the key.
  workdir = mkdtempSync(join(tmpdir(), 'cb-ssh-cwd-'));
  sshd = await h.docker.createContainer({
    name: `cbtest-sshd-${suffix}`,
    Image: SSHD_IMAGE,
    Env: [`AUTHORIZED_KEY=${keyPair.public}`],
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: [
      'printf "%s\\n" "$AUTHORIZED_KEY" > /home/git/.ssh/authorized_keys' +
        ' && chown git:git /home/git/.ssh/authorized_keys' +
        ' && chmod 600 /home/git/.ssh/authorized_keys && exec /usr/sbin/sshd -D -e -o LogLevel=VERBOSE',
    ],
    Labels: { [TEST_ROLE_LABEL]: 'ssh' },
    HostConfig: { NetworkMode: network.id, Runtime: 'runc' },
  });
  await sshd.start();
  sshdIp = Object.values((await sshd.inspect()).NetworkSettings.Networks)[0].IPAddress;
  manifest = h.writeManifest(
    {
      bottles: [
        {
          name: 'ssh',
          egress: { allow: ['git.test:22'] },
          // blocked.test is the same server: only the allowlist keeps the bottle from it.
          extra_hosts: { 'git.test': sshdIp, 'blocked.test': sshdIp, ...PIN_DEFAULT_HOSTS },
          ssh: [{ Host: 'git.test', IdentityFile: './keys/id_ed25519' }],
        },
      ],
      agents: [{ name: 'sleeper', bottle: 'ssh', command: ['sleep', '600'] }],
    },
    { 'keys/id_ed25519': keyPair.private },
  );
}, 600_000);

afterAll(async () => {
  await h?.cleanup();
  if (workdir) rmSync(workdir, { recursive: true, force: true });
  await sshd?.remove({ force: true }).catch(() => undefined);
  if (network) {
    // A gateway the cleanup could not remove would keep the network busy.
    const attached = Object.keys(
      ((await network.inspect().catch(() => ({}))) as { Containers?: object }).Containers ?? {},
    );
    for (const id of attached) await network.disconnect({ Container: id, Force: true }).catch(() => undefined);
    await network.remove().catch(() => undefined);
  }
}, 120_000);

async function eventuallyEvent(identity: string, match: (e: LifecycleEvent) => boolean): Promise<LifecycleEvent> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = (await h.log.read(identity)).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${identity}: no matching event`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe.each(['runsc', 'runc'] as const)('ssh from a bottle under %s', (runtime) => {
  let identity: string;
  let agent: Docker.Container;
  const asAgent = (script: string) => execIn(agent, ['bash', '-c', script], { user: 'node' });

  beforeAll(async () => {
    const started = await h.cli(['--manifest', manifest, 'start', 'sleeper', '--detach'], {
      env: { CLAUDE_BOTTLE_RUNTIME: runtime },
      cwd: workdir,
      timeoutMs: 540_000,
    });
    identity = identityFrom(started);
    await h.waitForEvent(identity, 'agent.started');
    const names = resourceNames(identity);
    agent = h.docker.getContainer(names.agentContainer);
    expect((await agent.inspect()).HostConfig.Runtime).toBe(runtime);
    await network!.connect({ Container: names.gatewayContainer });
  }, 600_000);

  it('clones ssh://git@git.test/repo through the gateway with the key the gateway holds', async () => {
    const before = await sshdConnections();
    const clone = await asAgent('cd /tmp && git clone -q ssh://git@git.test/repo clone');
    expect(clone.code, clone.output).toBe(0);
    expect((await asAgent('cat /tmp/clone/README')).output.trim()).toBe(README);
    expect(await sshdConnections()).toBe(before + 1);
    const allowed = await eventuallyEvent(
      identity,
      (e) => e.type === 'egress.allowed' && (e.data as { host?: string }).host === 'git.test',
    );
    expect(allowed.data).toMatchObject({ host: 'git.test', port: 22 });
    // The agent can list what the gateway holds (public keys) and nothing more.
    const listed = await asAgent('ssh-add -L');
    expect(listed.output.trim()).toBe(keyPair.public.trim());
  }, 120_000);

  it("finds the private key in none of the agent's files, environment or docker inspect", async () => {
    // A control string in a file of the agent's home proves the search reaches the files the key would be in.
    const control = `control-${randomBytes(8).toString('hex')}`;
    await asAgent(`echo ${control} > ~/.search-control`);
    const patterns = [...keyMarkers, control].map((m) => `-e '${m}'`).join(' ');
    const files = await execIn(agent, [
      'sh',
      '-c',
      `grep -rlsF -D skip ${patterns} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev; echo "grep exit $?"`,
    ]);
    const found = files.output.split('\n').filter((line) => line.trim() && !line.startsWith('grep exit'));
    expect(found).toEqual(['/home/node/.search-control']);
    await asAgent('rm ~/.search-control');
    // A glob, not ls: ls uses statx, which runsc here refuses.
    const ssh = await asAgent(
      'for f in ~/.ssh/* ~/.ssh/.[!.]*; do [ -e "$f" ] || [ -S "$f" ] && echo "${f##*/}"; done',
    );
    expect(ssh.output.split(/\s+/).filter(Boolean).sort()).toEqual(['agent.sock', 'config', 'known_hosts']);
    const env = await asAgent('env');
    expect(env.output).toContain('SSH_AUTH_SOCK=/home/node/.ssh/agent.sock');
    for (const marker of keyMarkers) {
      expect(env.output).not.toContain(marker);
      for (const container of [agent, h.docker.getContainer(resourceNames(identity).gatewayContainer)]) {
        expect(JSON.stringify(await container.inspect())).not.toContain(marker);
      }
    }
  }, 180_000);

  it('refuses ssh to a host that is not on the allowlist, records it, and never connects', async () => {
    const before = await sshdConnections();
    const refused = await asAgent('ssh -o BatchMode=yes -o ConnectTimeout=15 git@blocked.test true 2>&1');
    expect(refused.code).not.toBe(0);
    const denied = await eventuallyEvent(
      identity,
      (e) => e.type === 'egress.denied' && (e.data as { host?: string }).host === 'blocked.test',
    );
    expect(denied.data).toMatchObject({ host: 'blocked.test', port: 22 });
    expect(await sshdConnections()).toBe(before);
  }, 120_000);
});

/** An unencrypted PKCS#8 key, which ssh2 (and so the gateway's ssh-agent) cannot read. */
function pkcs8Key(): string {
  const path = join(tmpdir(), `cb-ssh-pkcs8-${randomBytes(4).toString('hex')}`);
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-m', 'PKCS8', '-N', '', '-f', path], { stdio: 'ignore' });
    return readFileSync(path, 'utf8');
  } finally {
    rmSync(path, { force: true });
    rmSync(`${path}.pub`, { force: true });
  }
}

describe('an ssh key the gateway cannot use', () => {
  it.each([
    {
      what: 'with a passphrase',
      key: () => utils.generateKeyPairSync('ed25519', { passphrase: 'correct horse', cipher: 'aes256-ctr', rounds: 4 }),
      says: /ssh entry git\.test: IdentityFile .*\/id is protected by a passphrase/,
    },
    {
      what: 'in PKCS#8',
      key: () => ({ private: pkcs8Key() }),
      says: /ssh entry git\.test: IdentityFile .*\/id is a PKCS#8 key.*ssh-keygen -p -N '' -m RFC4716 -f /,
    },
  ])(
    '$what is refused at start with one line and exit 2, before anything exists',
    async ({ key, says }) => {
      const refused = key();
      const refusedManifest = h.writeManifest(
        {
          bottles: [
            { name: 'ssh', egress: { allow: ['git.test:22'] }, ssh: [{ Host: 'git.test', IdentityFile: './id' }] },
          ],
          agents: [{ name: 'sleeper', bottle: 'ssh', command: ['sleep', '600'] }],
        },
        { id: refused.private },
      );
      const before = (await h.log.listBottles()).length;
      const started = await h.cli(['--manifest', refusedManifest, 'start', 'sleeper', '--detach'], { cwd: workdir });
      expect(started.code).toBe(2);
      expect(started.stdout).toBe('');
      // One error line (a note that the local worker was started may come before it).
      const errors = started.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('bottle:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(says);
      expect((await h.log.listBottles()).length).toBe(before);
    },
    120_000,
  );
});
