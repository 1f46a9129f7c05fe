import type Docker from 'dockerode';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeFactsFromLog } from '../../src/cli/resume-facts.js';
import { AGENT_INIT_PATH } from '../../src/effects/docker/agent-init.js';
import { ensureConnected, gatewayContainerSpec } from '../../src/effects/docker/containers.js';
import { ADDRESSLESS_BRIDGE_OPTION } from '../../src/effects/docker/networks.js';
import { effectHandlers } from '../../src/effects/index.js';
import {
  PermanentEffectError,
  type EffectContext,
  type EffectHandler,
  type LaunchSecrets,
} from '../../src/effects/types.js';
import type { LifecycleEvent, NewEvent } from '../../src/events/schema.js';
import { GATEWAY_CONFIG_PATH, GATEWAY_FILES_DIR, GATEWAY_SECRETS_PATH } from '../../src/gateway/protocol.js';
import type { NetworkLayout } from '../../src/machines/context.js';
import type { EffectKind, EffectOutcome, EffectParams, EffectRequest } from '../../src/machines/effects.js';
import { bottleStatus, foldEvents, initialBottleState } from '../../src/machines/index.js';
import { CA_BUNDLE_TARGET, GATEWAY_CA_TARGET } from '../../src/plan/agent-env.js';
import { SSH_AGENT_BRIDGE_PATH } from '../../src/plan/ssh-config.js';
import type { BottlePlan } from '../../src/plan/schema.js';
import { LABELS } from '../../src/shared/names.js';
import { statePaths } from '../../src/shared/paths.js';
import { overlaps, parseCidr, subnetAddresses, subnetPool } from '../../src/shared/subnet-pool.js';
import {
  ensureStandInImage,
  execIn,
  sweepIdentity,
  testDocker,
  testIdentity,
  testPlan,
  TEST_STANDIN_IMAGE,
} from '../support/docker.js';
import { history, launchSteps, stored, type Step } from '../golden/fixtures.js';
import { heldLaunchSecrets } from '../support/launch-secrets.js';
import { noUploads } from '../support/no-uploads.js';

const docker: Docker = testDocker();
const handlers = effectHandlers({ docker });
let home: string;
let previousHome: string | undefined;
const identities: string[] = [];
/** A stand-in gateway that prints its ready line and listens only once /tmp/go exists in it. */
const heldGatewayImage = `claude-bottle-test/standin-held:${testIdentity('img')}`;

function context(
  plan: BottlePlan,
  observed: NewEvent[] = [],
  lastEgressDecision = 0,
  logged: LifecycleEvent[] = [],
  secrets: LaunchSecrets = heldLaunchSecrets(),
): EffectContext {
  return {
    loggedEvent: async (seq) => logged.find((e) => e.seq === seq),
    identity: plan.identity,
    plan,
    observe: async (events) => {
      observed.push(...events);
    },
    progress: () => undefined,
    signal: new AbortController().signal,
    lastEgressDecision,
    secrets,
    uploads: noUploads,
  };
}

interface RunOptions<K extends EffectKind> {
  params?: EffectParams<K>;
  observed?: NewEvent[];
  lastEgressDecision?: number;
  logged?: LifecycleEvent[];
  secrets?: LaunchSecrets;
}

function run<K extends EffectKind>(kind: K, plan: BottlePlan, opts: RunOptions<K> = {}): Promise<EffectOutcome<K>[]> {
  const req = { kind, identity: plan.identity, causedBySeq: 1, params: opts.params ?? {} } as EffectRequest<K>;
  const handler = handlers[kind] as EffectHandler<K>;
  return handler(req, context(plan, opts.observed, opts.lastEgressDecision, opts.logged, opts.secrets));
}

/** What the machine passes the launch effects: the layout network.created reported. */
function layoutOf(created: NewEvent<'network.created'>): NetworkLayout {
  const { internal, egress, subnets, addresses } = created.data;
  if (!subnets || !addresses) throw new Error('network.created without subnets or addresses');
  return {
    internal: { name: internal, subnet: subnets.internal },
    egress: { name: egress, subnet: subnets.egress },
    addresses,
  };
}

async function createNetworks(plan: BottlePlan): Promise<NetworkLayout> {
  const [created] = await run('create_networks', plan);
  return layoutOf(created);
}

async function labelledCount(identity: string): Promise<number> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  const [containers, networks] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
  ]);
  return containers.length + networks.length;
}

async function failureOf(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => undefined,
    (err: unknown) => err,
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The agent's pid 1 as argv, polled until `done` says so or about five seconds pass. */
async function pid1(agent: Docker.Container, done: (argv: string[]) => boolean = () => true): Promise<string[]> {
  const read = async () => (await execIn(agent, ['cat', '/proc/1/cmdline'])).output.split('\0').filter(Boolean);
  let argv = await read();
  for (let i = 0; i < 50 && !done(argv); i++) {
    await sleep(100);
    argv = await read();
  }
  return argv;
}

async function buildHeldGatewayImage(): Promise<void> {
  const pack = tar.pack();
  const wait = 'while [ ! -f /tmp/go ]; do sleep 0.1; done; exec /usr/local/bin/standin-gateway';
  pack.entry({ name: 'Dockerfile' }, `FROM ${TEST_STANDIN_IMAGE}\nCMD ["sh", "-c", ${JSON.stringify(wait)}]\n`);
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, { t: heldGatewayImage, rm: true });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
      const failure = err?.message ?? out?.find((o) => o.error)?.error;
      if (failure) reject(new Error(`building ${heldGatewayImage} failed: ${failure}`));
      else resolve();
    }),
  );
}

beforeAll(async () => {
  await ensureStandInImage(docker);
  await buildHeldGatewayImage();
  home = await mkdtemp(join(tmpdir(), 'cb-handlers-'));
  previousHome = process.env.CLAUDE_BOTTLE_HOME;
  process.env.CLAUDE_BOTTLE_HOME = join(home, 'bottle-home');
});

afterAll(async () => {
  for (const identity of identities) {
    await run('cleanup', standInPlan(identity)).catch(() => undefined);
    await sweepIdentity(docker, identity);
  }
  await docker
    .getImage(heldGatewayImage)
    .remove({ force: true })
    .catch(() => undefined);
  if (previousHome === undefined) delete process.env.CLAUDE_BOTTLE_HOME;
  else process.env.CLAUDE_BOTTLE_HOME = previousHome;
  if (home) await rm(home, { recursive: true, force: true });
});

function standInImagePlan() {
  return { tag: TEST_STANDIN_IMAGE, context_hash: 'test', dockerfile: 'builtin:agent', builtin: true };
}

/** A plan whose agent and gateway both run the stand-in image. */
function standInPlan(identity: string, overrides: Partial<BottlePlan> = {}): BottlePlan {
  const gateway_image = { ...standInImagePlan(), dockerfile: 'builtin:gateway' };
  return testPlan(identity, { image: standInImagePlan(), gateway_image, ...overrides });
}

function newIdentity(agent: string): string {
  const identity = testIdentity(agent);
  identities.push(identity);
  return identity;
}

describe('a bottle driven through the effect handlers', () => {
  const identity = newIdentity('hand');
  let plan: BottlePlan;
  let network: NetworkLayout;

  beforeAll(async () => {
    const inputs = join(home, 'inputs');
    await mkdir(join(inputs, 'skills', 'tdd'), { recursive: true });
    await mkdir(join(inputs, 'work', '.git'), { recursive: true });
    await writeFile(join(inputs, 'prompt.md'), 'be careful\n');
    await writeFile(join(inputs, 'skills', 'tdd', 'SKILL.md'), '# tdd\n');
    await writeFile(join(inputs, 'id_test'), 'not-a-real-key\n');
    await chmod(join(inputs, 'id_test'), 0o600);
    await writeFile(join(inputs, 'work', 'main.ts'), 'export {};\n');
    await writeFile(join(inputs, 'work', '.git', 'HEAD'), 'ref: refs/heads/main\n');
    plan = standInPlan(identity, {
      hosts: ['registry.npmjs.org'],
      extra_hosts: { 'mirror.internal.test': 'host-gateway' },
      credentials: [
        {
          role: 'anthropic-base-url',
          upstream: 'https://api.anthropic.com',
          auth: 'oauth',
          token_source: 'env:TOKEN',
        },
      ],
      prompt: join(inputs, 'prompt.md'),
      skills: [{ name: 'tdd', source: join(inputs, 'skills', 'tdd') }],
      ssh: [{ Host: 'github.com', IdentityFile: join(inputs, 'id_test') }],
      cwd: join(inputs, 'work'),
      copy_cwd: true,
      // Waits for the test's go-ahead, leaves a transcript behind, and exits non-zero.
      command: [
        'sh',
        '-c',
        'while [ ! -f /tmp/go ]; do sleep 0.2; done; ' +
          'mkdir -p /home/node/.claude/projects && echo turn > /home/node/.claude/projects/log.jsonl; exit 3',
      ],
    });
  });

  it('prepare_state writes metadata.json and clears a leftover .preserve', async () => {
    const paths = statePaths(identity);
    await mkdir(paths.dir, { recursive: true });
    await writeFile(paths.preserveMarker, '{}');

    const events = await run('prepare_state', plan);

    expect(events).toEqual([{ type: 'bottle.prepared', data: { state_dir: paths.dir } }]);
    expect(existsSync(paths.preserveMarker)).toBe(false);
    const metadata = JSON.parse(await readFile(paths.metadata, 'utf8'));
    expect(metadata).toMatchObject({
      identity,
      agent: plan.agent,
      bottle: 'test',
      cwd: plan.cwd,
      copy_cwd: true,
      base_dockerfile: null,
    });
    expect(metadata.plan.identity).toBe(identity);
  });

  it('create_networks puts each network on a pool subnet of its own and reports the fixed addresses', async () => {
    const [created] = await run('create_networks', plan);

    network = layoutOf(created);
    expect(created.data).toMatchObject({ internal: plan.networks.internal, egress: plan.networks.egress });
    const pool = subnetPool();
    for (const subnet of [network.internal.subnet, network.egress.subnet]) {
      expect(subnet).toMatch(/\/29$/);
      expect(overlaps(parseCidr(subnet), pool)).toBe(true);
    }
    expect(overlaps(parseCidr(network.internal.subnet), parseCidr(network.egress.subnet))).toBe(false);
    const { gateway, agent, pipelock } = subnetAddresses(network.internal.subnet);
    expect(network.addresses).toEqual({ gateway, agent, pipelock });

    const internal = await docker.getNetwork(plan.networks.internal).inspect();
    const egress = await docker.getNetwork(plan.networks.egress).inspect();
    expect(internal.Internal).toBe(true);
    expect(internal.IPAM?.Config).toEqual([expect.objectContaining({ Subnet: network.internal.subnet })]);
    expect(internal.Options?.[ADDRESSLESS_BRIDGE_OPTION]).toBe('true');
    expect(egress.Internal).toBe(false);
    expect(egress.IPAM?.Config).toEqual([expect.objectContaining({ Subnet: network.egress.subnet })]);
  });

  it('start_gateway gives the gateway its fixed address, config and secrets, and discards the secrets', async () => {
    const launchSecrets = heldLaunchSecrets({ 'route-0': 'sekret-value' });

    const events = await run('start_gateway', plan, { params: { network }, secrets: launchSecrets });

    const info = await docker.getContainer(plan.containers.gateway).inspect();
    const started_at = info.State.StartedAt;
    const ip = network.addresses.gateway;
    const data = { container: plan.containers.gateway, ip, started_at, legacy_launch: false };
    expect(events).toEqual([{ type: 'gateway.started', data }]);
    expect(info.NetworkSettings.Networks[network.internal.name].IPAddress).toBe(network.addresses.gateway);
    const attached = Object.keys(info.NetworkSettings.Networks).sort();
    expect(attached).toEqual([network.egress.name, network.internal.name].sort());
    expect(launchSecrets.discarded).toBe(true);

    const gateway = docker.getContainer(plan.containers.gateway);
    expect((await execIn(gateway, ['stat', '-c', '%u %a', GATEWAY_SECRETS_PATH])).output.trim()).toBe('65534 400');
    const secrets = JSON.parse((await execIn(gateway, ['cat', GATEWAY_SECRETS_PATH])).output);
    expect(secrets).toEqual({ 'route-0': 'sekret-value' });
    const config = JSON.parse((await execIn(gateway, ['cat', GATEWAY_CONFIG_PATH])).output);
    expect(config).toMatchObject({
      identity,
      allow: ['registry.npmjs.org'],
      // Docker resolves host-gateway where the gateway reads it: its own /etc/hosts.
      extra_hosts: { 'mirror.internal.test': 'host-gateway' },
      routes: [{ id: 'route-0', role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'oauth' }],
    });
    const hostsFile = (await execIn(gateway, ['cat', '/etc/hosts'])).output;
    expect(hostsFile).toMatch(/^\S+\s+mirror\.internal\.test$/m);
    expect((await execIn(gateway, ['touch', `${GATEWAY_FILES_DIR}/extra`])).code).not.toBe(0);

    // With the gateway on both networks their bridges exist: the host holds no address on the internal
    // one, so the agent's default route reaches nobody; the egress one holds the first of its subnet.
    const hostAddresses = (name: string) => {
      const bridge = `br-${info.NetworkSettings.Networks[name].NetworkID.slice(0, 12)}`;
      return (networkInterfaces()[bridge] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
    };
    expect(hostAddresses(network.internal.name)).toEqual([]);
    expect(hostAddresses(network.egress.name)).toEqual([subnetAddresses(network.egress.subnet).bridge]);

    // The agent is its own effect now: starting the gateway makes no agent container.
    await expect(docker.getContainer(plan.containers.agent).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('await_gateway_ready reports the ready line, without a CA when the gateway published none', async () => {
    expect(await run('await_gateway_ready', plan)).toEqual([{ type: 'gateway.ready', data: {} }]);
  });

  it('start_gateway again reuses the running gateway and reports the same start', async () => {
    const before = await docker.getContainer(plan.containers.gateway).inspect();
    const events = await run('start_gateway', plan, { params: { network } });
    const { addresses } = network;
    const started_at = before.State.StartedAt;
    const data = { container: plan.containers.gateway, ip: addresses.gateway, started_at, legacy_launch: false };
    expect(events).toEqual([{ type: 'gateway.started', data }]);
    expect((await docker.getContainer(plan.containers.gateway).inspect()).Id).toBe(before.Id);
  });

  it('start_agent provisions prompt, skills, ssh config, cwd for uid 1000; aims the agent at the gateway', async () => {
    const events = await run('start_agent', plan, { params: { network, interception_ca: null } });

    const agent = docker.getContainer(plan.containers.agent);
    const info = await agent.inspect();
    const data = { container: plan.containers.agent, runtime: 'runc', started_at: info.State.StartedAt };
    expect(events).toEqual([{ type: 'agent.started', data }]);
    expect(info.NetworkSettings.Networks[network.internal.name].IPAddress).toBe(network.addresses.agent);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([network.internal.name]);
    // With ssh entries the gateway's ssh-agent is bridged into the bottle before the command runs.
    expect(info.Config.Entrypoint).toEqual([AGENT_INIT_PATH, SSH_AGENT_BRIDGE_PATH]);
    expect(info.Config.Cmd).toEqual(plan.command);
    const listing = await execIn(agent, [
      'stat',
      '-c',
      '%n %u:%g %a',
      '/home/node/.claude-bottle/prompt.md',
      '/home/node/.claude/skills/tdd/SKILL.md',
      '/home/node/.ssh',
      '/home/node/.ssh/config',
      SSH_AGENT_BRIDGE_PATH,
      `${plan.cwd}/main.ts`,
      `${plan.cwd}/.git/HEAD`,
    ]);
    expect(listing.output.trim().split('\n')).toEqual([
      '/home/node/.claude-bottle/prompt.md 1000:1000 644',
      '/home/node/.claude/skills/tdd/SKILL.md 1000:1000 644',
      '/home/node/.ssh 1000:1000 700',
      '/home/node/.ssh/config 1000:1000 600',
      `${SSH_AGENT_BRIDGE_PATH} 0:0 755`,
      `${plan.cwd}/main.ts 1000:1000 644`,
      `${plan.cwd}/.git/HEAD 1000:1000 644`,
    ]);
    const sshConfig = (await execIn(agent, ['cat', '/home/node/.ssh/config'])).output;
    const gatewayIp = network.addresses.gateway;
    expect(sshConfig).toContain(`ProxyCommand nc -X connect -x ${gatewayIp}:3128 %h %p`);
    // The key stays with the gateway: nothing of it is copied in.
    expect((await execIn(agent, ['test', '-e', '/home/node/.ssh/id_test'])).code).not.toBe(0);
    expect((await execIn(agent, ['printenv', 'SSH_AUTH_SOCK'])).output.trim()).toBe('/home/node/.ssh/agent.sock');
    expect((await execIn(agent, ['printenv', 'HTTPS_PROXY'])).output.trim()).toBe(`http://${gatewayIp}:3128`);
    expect((await execIn(agent, ['printenv', 'ANTHROPIC_BASE_URL'])).output.trim()).toBe(`http://${gatewayIp}:3129`);
    expect((await execIn(agent, ['id', '-un'])).output.trim()).toBe('node');
    // Without host credential routes the agent is given no CA of the gateway's.
    expect((await execIn(agent, ['test', '-e', GATEWAY_CA_TARGET])).code).not.toBe(0);
    // The init program gave its place to the agent's command once the gateway accepted.
    expect((await pid1(agent, (argv) => argv[0] === 'sh')).slice(0, 2)).toEqual(['sh', '-c']);
    const connect = `timeout 3 bash -c 'exec 3<>/dev/tcp/${gatewayIp}/3128 && head -1 <&3'`;
    const probe = await execIn(agent, ['bash', '-c', connect]);
    expect(probe.output.trim()).toBe('gateway');
  });

  it('start_agent again neither recreates nor restarts the agent', async () => {
    const before = await docker.getContainer(plan.containers.agent).inspect();
    const events = await run('start_agent', plan, { params: { network, interception_ca: null } });
    const after = await docker.getContainer(plan.containers.agent).inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    const data = { container: plan.containers.agent, runtime: 'runc', started_at: before.State.StartedAt };
    expect(events).toEqual([{ type: 'agent.started', data }]);
  });

  it('watch_agent records gateway decisions above the recorded mark, then the exit', async () => {
    const observed: NewEvent[] = [];
    const watching = run('watch_agent', plan, { observed, lastEgressDecision: 1 });
    // Let the stand-in gateway print its delayed capability line before the agent exits.
    await sleep(2500);
    await execIn(docker.getContainer(plan.containers.agent), ['touch', '/tmp/go']);

    expect(await watching).toEqual([{ type: 'agent.exited', data: { code: 3, signal: null } }]);
    expect(observed).toEqual([
      {
        type: 'egress.denied',
        data: { n: 2, host: 'blocked.test', port: 443, method: 'CONNECT', reason: 'not_in_allowlist' },
      },
      {
        type: 'capability.requested',
        data: {
          request_id: 'req-1',
          kind: 'egress',
          host: 'blocked.test',
          port: 443,
          reason: 'needs it',
          queue_if_pending: true,
        },
      },
    ]);
  });

  it('watch_agent retried after the exit drains only decisions not yet recorded', async () => {
    const observed: NewEvent[] = [];
    const events = await run('watch_agent', plan, { observed, lastEgressDecision: 2 });
    expect(events).toEqual([{ type: 'agent.exited', data: { code: 3, signal: null } }]);
    expect(observed.map((e) => e.type)).toEqual(['capability.requested']);
  });

  it("snapshot_transcript copies the agent's ~/.claude (transcript, provisioned skills) into the state", async () => {
    const events = await run('snapshot_transcript', plan, { params: { code: 3, signal: null } });
    // projects/log.jsonl ("turn\n", 5 bytes) + skills/tdd/SKILL.md ("# tdd\n", 6 bytes)
    // + the shipped bottle-request skill + settings.json with the status hooks (its size depends on the hooks)
    const shipped = statSync(join(import.meta.dirname, '../../images/agent/skills/bottle-request/SKILL.md')).size;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'transcript.snapshotted', data: { files: 4, missing: false } });
    expect((events[0].data as { bytes: number }).bytes).toBeGreaterThan(11 + shipped);
    expect(await readFile(join(statePaths(identity).transcript, 'projects', 'log.jsonl'), 'utf8')).toBe('turn\n');
  });

  it('cleanup removes every container, network and the state folder', async () => {
    const events = await run('cleanup', plan);
    expect(events).toEqual([{ type: 'bottle.cleaned', data: {} }]);
    expect(await labelledCount(identity)).toBe(0);
    expect(existsSync(statePaths(identity).dir)).toBe(false);
  });
});

describe('an agent started before its gateway is ready', () => {
  const identity = newIdentity('early');

  it('waits in its init program, then runs its command as pid 1 once the gateway listens', async () => {
    const cwd = join(home, 'early-cwd');
    await mkdir(cwd, { recursive: true });
    const plan = standInPlan(identity, {
      cwd,
      gateway_image: { ...standInImagePlan(), tag: heldGatewayImage, dockerfile: 'builtin:gateway' },
      command: ['sh', '-c', 'touch /tmp/ran; exec sleep 600'],
    });
    const network = await createNetworks(plan);

    // Like the worker: both starts at once. Neither waits for the gateway to be ready.
    const [gatewayStarted, agentStarted] = await Promise.all([
      run('start_gateway', plan, { params: { network } }),
      run('start_agent', plan, { params: { network, interception_ca: null } }),
    ]);
    expect(gatewayStarted).toMatchObject([{ type: 'gateway.started', data: { ip: network.addresses.gateway } }]);
    expect(agentStarted).toMatchObject([{ type: 'agent.started', data: { container: plan.containers.agent } }]);

    const agent = docker.getContainer(plan.containers.agent);
    const gateway = docker.getContainer(plan.containers.gateway);
    // The gateway is running at its fixed address but does not listen yet; the agent's init holds its command back.
    const gatewayInfo = await gateway.inspect();
    expect(gatewayInfo.NetworkSettings.Networks[network.internal.name].IPAddress).toBe(network.addresses.gateway);
    await sleep(1000);
    expect((await agent.inspect()).State.Running).toBe(true);
    expect(await pid1(agent)).toEqual([AGENT_INIT_PATH, ...plan.command]);
    expect((await execIn(agent, ['test', '-e', '/tmp/ran'])).code).not.toBe(0);
    let ready = false;
    const readying = run('await_gateway_ready', plan).then((events) => {
      ready = true;
      return events;
    });
    await sleep(500);
    expect(ready).toBe(false);

    await execIn(gateway, ['touch', '/tmp/go']);

    expect(await readying).toEqual([{ type: 'gateway.ready', data: {} }]);
    expect(await pid1(agent, (argv) => argv[0] === 'sleep')).toEqual(['sleep', '600']);
    expect((await execIn(agent, ['test', '-e', '/tmp/ran'])).code).toBe(0);
  });
});

describe('an agent with host credential routes', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIBtestonlynotarealcertificate\n-----END CERTIFICATE-----\n';
  const credentials = [{ host: 'api.github.test', auth: 'bearer' as const, token_source: 'env:GITHUB_TOKEN' }];

  it('trusts the interception CA passed in its params', async () => {
    const identity = newIdentity('ca');
    const cwd = join(home, 'ca-cwd');
    await mkdir(cwd, { recursive: true });
    const plan = standInPlan(identity, { cwd, credentials });
    const network = await createNetworks(plan);

    await run('start_agent', plan, { params: { network, interception_ca: ca } });

    const agent = docker.getContainer(plan.containers.agent);
    expect((await execIn(agent, ['stat', '-c', '%u %a', GATEWAY_CA_TARGET])).output.trim()).toBe('0 444');
    expect((await execIn(agent, ['cat', GATEWAY_CA_TARGET])).output).toBe(ca);
    expect((await execIn(agent, ['cat', CA_BUNDLE_TARGET])).output.endsWith(ca)).toBe(true);
    expect((await execIn(agent, ['printenv', 'NODE_EXTRA_CA_CERTS'])).output.trim()).toBe(GATEWAY_CA_TARGET);
  });

  it('fails start_agent permanently when no CA is passed', async () => {
    const identity = newIdentity('noca');
    const cwd = join(home, 'noca-cwd');
    await mkdir(cwd, { recursive: true });
    const plan = standInPlan(identity, { cwd, credentials });
    const network = await createNetworks(plan);

    const failure = await failureOf(run('start_agent', plan, { params: { network, interception_ca: null } }));

    expect(failure).toBeInstanceOf(PermanentEffectError);
    expect((failure as Error).message).toMatch(/no interception CA/);
    expect((await docker.getContainer(plan.containers.agent).inspect()).State.Running).toBe(false);
  });
});

describe('a gateway that exits after binding its ports', () => {
  const identity = newIdentity('gdie');
  const plan = standInPlan(identity);

  it("fails await_gateway_ready permanently with the gateway's last words", async () => {
    const network = await createNetworks(plan);
    const spec = gatewayContainerSpec(plan, { network });
    spec.Entrypoint = [
      'sh',
      '-c',
      'echo \'{"t":"listening","proxy_port":3128,"credential_port":3129}\'; ' +
        'echo "gateway: cannot parse its secrets" >&2; exit 1',
    ];
    spec.Cmd = [];
    const gateway = await docker.createContainer(spec);
    await ensureConnected(docker, gateway.id, network.internal.name, network.addresses.gateway);
    await gateway.start();
    await gateway.wait();

    const failure = await failureOf(run('await_gateway_ready', plan));

    expect(failure).toBeInstanceOf(PermanentEffectError);
    const lastWords = /gateway exited \(code 1\) before it was ready: .*cannot parse its secrets/;
    expect((failure as Error).message).toMatch(lastWords);
  });
});

describe('a launch on networks made before they had fixed addresses', () => {
  const identity = newIdentity('lgcy');
  const plan = standInPlan(identity);

  it.each(['start_gateway', 'start_pipelock'] as const)('fails %s permanently, asking for a resume', async (kind) => {
    const failure = await failureOf(run(kind, plan, { params: { network: null } }));
    expect(failure).toBeInstanceOf(PermanentEffectError);
    expect((failure as Error).message).toMatch(/without fixed addresses.*resume/);
    expect(await labelledCount(identity)).toBe(0);
  });

  it('fails start_agent permanently, asking for a resume', async () => {
    const failure = await failureOf(run('start_agent', plan, { params: { network: null, interception_ca: null } }));
    expect(failure).toBeInstanceOf(PermanentEffectError);
    expect((failure as Error).message).toMatch(/without fixed addresses.*resume/);
    expect(await labelledCount(identity)).toBe(0);
  });
});

describe('preservation handlers', () => {
  function freshPlan(): BottlePlan {
    return testPlan(newIdentity('pres'), { image: standInImagePlan(), gateway_image: standInImagePlan() });
  }

  it('preserve leaves the .preserve marker and a resume hint', async () => {
    const plan = freshPlan();
    const events = await run('preserve', plan, { params: { reason: 'crash' } });
    const data = { reason: 'crash', resume_hint: `bottle resume ${plan.identity}` };
    expect(events).toEqual([{ type: 'bottle.preserved', data }]);
    const marker = JSON.parse(await readFile(statePaths(plan.identity).preserveMarker, 'utf8'));
    expect(marker).toMatchObject({ reason: 'crash' });
  });

  it('apply_capability for a Dockerfile writes the per-bottle Dockerfile and preserves the bottle', async () => {
    const plan = freshPlan();
    const dockerfile = 'FROM debian:bookworm-slim\nRUN true';
    const asked = { request_id: 'r1', kind: 'dockerfile' as const, reason: 'need a tool' };
    const request = { ...asked, dockerfile_chars: dockerfile.length, requested_seq: 7 };
    // The body is read from the request's own event, not from the live state.
    const requested = { ...asked, dockerfile, queue_if_pending: true };
    const at = new Date().toISOString();
    const logged = [{ seq: 7, type: 'capability.requested', at, v: 2, data: requested }] as LifecycleEvent[];
    const events = await run('apply_capability', plan, { params: { request, approved_by: 'me' }, logged });
    // No agent container exists here, so the snapshot reports it missing; the bottle is preserved regardless.
    expect(events.map((e) => e.type)).toEqual(['transcript.snapshotted', 'bottle.preserved']);
    const data = { reason: 'capability', resume_hint: `bottle resume ${plan.identity}` };
    expect(events[1]).toEqual({ type: 'bottle.preserved', data });
    expect(await readFile(statePaths(plan.identity).dockerfile, 'utf8')).toBe('FROM debian:bookworm-slim\nRUN true\n');
    expect(existsSync(statePaths(plan.identity).preserveMarker)).toBe(true);
  });

  it('apply_capability for an egress approval logged before egress applied live: the resume allows it', async () => {
    const plan = freshPlan();
    const { identity } = plan;
    const asked: Step = [
      'capability.requested',
      { request_id: 'r1', kind: 'egress', host: 'b.example.test', port: 8443, reason: 'r', queue_if_pending: true },
    ];
    // A v1 approval: the machine asks for a rebuild rather than a live answer.
    const steps = [...launchSteps(identity), asked, stored('capability.approved', 1, { request_id: 'r1', by: 'cli' })];
    const requested: EffectRequest[] = [];
    foldEvents(initialBottleState(identity), history(steps), (_event, effects) => requested.push(...effects));
    const apply = requested.find((e): e is EffectRequest<'apply_capability'> => e.kind === 'apply_capability');
    expect(apply).toBeDefined();

    const events = await run('apply_capability', plan, { params: apply!.params });
    expect(events.map((e) => e.type)).toEqual(['transcript.snapshotted', 'bottle.preserved']);
    // The effect keeps nothing about the host: the resume finds it in the log the effect's events complete.
    const recorded = history([...steps, ...events.map((e) => [e.type, e.data] as Step)]);
    const facts = resumeFactsFromLog(identity, recorded);
    expect(bottleStatus(facts.state)).toMatch(/^preserved/);
    expect(facts.approvedEgress).toEqual(['b.example.test:8443']);
  });

  it('teardown_failed keeps the state, marked as a failure', async () => {
    const plan = freshPlan();
    const events = await run('teardown_failed', plan, { params: { effect: 'start_agent', error: 'boom' } });
    expect(events).toEqual([{ type: 'bottle.failed', data: { effect: 'start_agent', error: 'boom' } }]);
    const marker = JSON.parse(await readFile(statePaths(plan.identity).preserveMarker, 'utf8'));
    expect(marker).toMatchObject({ reason: 'failure' });
  });

  it('stop_agent stops a running agent and tolerates one that is already gone', async () => {
    const plan = freshPlan();
    const agent = await docker.createContainer({
      name: plan.containers.agent,
      Image: TEST_STANDIN_IMAGE,
      Cmd: ['sh', '-c', "trap 'exit 143' TERM; while :; do sleep 0.2; done"],
      Labels: { [LABELS.identity]: plan.identity },
    });
    await agent.start();
    expect(await run('stop_agent', plan, { params: { by: 'test' } })).toEqual([]);
    expect((await agent.inspect()).State.ExitCode).toBe(143);
    await agent.remove({ force: true });
    expect(await run('stop_agent', plan, { params: { by: 'test' } })).toEqual([]);
  });
});
