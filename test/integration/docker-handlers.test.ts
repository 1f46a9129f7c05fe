import type Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listHostGuards } from '../../src/effects/docker/host-guard.js';
import { AGENT_INIT_PATH } from '../../src/effects/docker/agent-init.js';
import { agentContainerSpec, gatewayContainerSpec } from '../../src/effects/docker/containers.js';
import { inspectNetwork } from '../../src/effects/docker/networks.js';
import { effectHandlers } from '../../src/effects/handlers.js';
import { PermanentEffectError, type EffectContext, type EffectKind, type EffectRequest, type NewEvent } from '../../src/effects/types.js';
import { agentEnvironment } from '../../src/plan/agent-env.js';
import type { BottlePlan } from '../../src/plan/schema.js';
import { bottleLabels, LABELS } from '../../src/shared/names.js';
import { statePaths } from '../../src/shared/paths.js';
import { ensureStandInImage, execIn, sweepIdentity, testDocker, testIdentity, testLabels, testPlan, TEST_STANDIN_IMAGE } from '../support/docker.js';

const docker: Docker = testDocker();
const handlers = effectHandlers({ docker });
let home: string;
let previousHome: string | undefined;
const identities: string[] = [];

function context(plan: BottlePlan, observed: NewEvent[] = [], lastEgressDecision = 0): EffectContext {
  return {
    identity: plan.identity,
    plan,
    observe: async (events) => {
      observed.push(...events);
    },
    progress: () => undefined,
    signal: new AbortController().signal,
    lastEgressDecision,
  };
}

function run(kind: EffectKind, plan: BottlePlan, opts: { params?: Record<string, unknown>; observed?: NewEvent[]; lastEgressDecision?: number } = {}) {
  const req: EffectRequest = { kind, identity: plan.identity, causedBySeq: 1, params: opts.params ?? {} };
  return handlers[kind](req, context(plan, opts.observed, opts.lastEgressDecision));
}

async function labelledCount(identity: string): Promise<number> {
  const filters = JSON.stringify({ label: [`${LABELS.identity}=${identity}`] });
  return (await docker.listContainers({ all: true, filters })).length + (await docker.listNetworks({ filters })).length;
}

beforeAll(async () => {
  await ensureStandInImage(docker);
  home = await mkdtemp(join(tmpdir(), 'cb-handlers-'));
  previousHome = process.env.CLAUDE_BOTTLE_HOME;
  process.env.CLAUDE_BOTTLE_HOME = join(home, 'bottle-home');
});

afterAll(async () => {
  for (const identity of identities) {
    await handlers.cleanup({ kind: 'cleanup', identity, causedBySeq: 1, params: {} }, context(testPlan(identity, { gateway_image: standInImagePlan() }))).catch(() => undefined);
    await sweepIdentity(docker, identity);
  }
  if (previousHome === undefined) delete process.env.CLAUDE_BOTTLE_HOME;
  else process.env.CLAUDE_BOTTLE_HOME = previousHome;
  if (home) await rm(home, { recursive: true, force: true });
});

function standInImagePlan() {
  return { tag: TEST_STANDIN_IMAGE, context_hash: 'test', dockerfile: 'builtin:agent', builtin: true };
}

/** A plan whose agent and gateway both run the stand-in image. */
function standInPlan(identity: string, overrides: Partial<BottlePlan> = {}): BottlePlan {
  return testPlan(identity, { image: standInImagePlan(), gateway_image: { ...standInImagePlan(), dockerfile: 'builtin:gateway' }, ...overrides });
}

describe('a bottle driven through the effect handlers', () => {
  const identity = testIdentity('hand');
  identities.push(identity);
  let plan: BottlePlan;
  let gatewayIp: string;

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
      credentials: [{ role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'oauth', token_source: 'env:TOKEN' }],
      prompt: join(inputs, 'prompt.md'),
      skills: [{ name: 'tdd', source: join(inputs, 'skills', 'tdd') }],
      ssh: [{ Host: 'github.com', IdentityFile: join(inputs, 'id_test') }],
      cwd: join(inputs, 'work'),
      copy_cwd: true,
      // Waits for the test's go-ahead, leaves a transcript behind, and exits non-zero.
      command: ['sh', '-c', 'while [ ! -f /tmp/go ]; do sleep 0.2; done; mkdir -p /home/node/.claude/projects && echo turn > /home/node/.claude/projects/log.jsonl; exit 3'],
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
    expect(metadata).toMatchObject({ identity, agent: plan.agent, bottle: 'test', cwd: plan.cwd, copy_cwd: true, base_dockerfile: null });
    expect(metadata.plan.identity).toBe(identity);
  });

  it('create_networks makes the internal and egress networks', async () => {
    const events = await run('create_networks', plan);

    expect(events).toEqual([{ type: 'network.created', data: { internal: plan.networks.internal, egress: plan.networks.egress } }]);
    const internal = await inspectNetwork(docker, plan.networks.internal);
    expect(internal?.hostAddressless).toBe(true);
    // The host holds no address on the internal bridge, so the agent's default route reaches nobody.
    expect((networkInterfaces()[internal!.bridge] ?? []).filter((a) => a.family === 'IPv4')).toEqual([]);
    expect((await inspectNetwork(docker, plan.networks.egress))?.hostAddressless).toBe(false);
  });

  it('start_gateway hands the gateway its config and secrets, then deletes the secrets file', async () => {
    const paths = statePaths(identity);
    await writeFile(paths.secrets, JSON.stringify({ 'route-0': 'sekret-value' }), { mode: 0o600 });

    const events = await run('start_gateway', plan);

    // An address-less internal bridge needs no iptables guard (and no one-shot container to install one).
    expect((await listHostGuards(docker, TEST_STANDIN_IMAGE)).filter((g) => g.identity === identity)).toEqual([]);

    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'gateway.started', data: { container: plan.containers.gateway } });
    gatewayIp = String(events[0].data.ip);
    expect(gatewayIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(existsSync(paths.secrets)).toBe(false);

    const gateway = docker.getContainer(plan.containers.gateway);
    expect((await execIn(gateway, ['stat', '-c', '%u %a', '/etc/claude-bottle/secrets.json'])).output.trim()).toBe('65534 400');
    expect(JSON.parse((await execIn(gateway, ['cat', '/etc/claude-bottle/secrets.json'])).output)).toEqual({ 'route-0': 'sekret-value' });
    const config = JSON.parse((await execIn(gateway, ['cat', '/etc/claude-bottle/gateway.json'])).output);
    const egress = await inspectNetwork(docker, plan.networks.egress);
    expect(config).toMatchObject({
      identity,
      allow: ['registry.npmjs.org'],
      extra_hosts: { 'mirror.internal.test': egress!.gateway },
      routes: [{ id: 'route-0', role: 'anthropic-base-url', upstream: 'https://api.anthropic.com', auth: 'oauth' }],
    });
    expect((await execIn(gateway, ['touch', '/etc/claude-bottle/extra'])).code).not.toBe(0);

    // The agent's container was created for the address the gateway got and started alongside it,
    // behind the init program that waits for the gateway's port.
    const agent = await docker.getContainer(plan.containers.agent).inspect();
    expect(agent.State.Status).toBe('running');
    expect(agent.Config.Env).toContain(`HTTP_PROXY=http://${gatewayIp}:3128`);
    expect(agent.Config.Entrypoint).toEqual([AGENT_INIT_PATH]);
    expect(agent.Config.Cmd).toEqual(plan.command);
    expect(Date.parse(agent.State.StartedAt)).toBeGreaterThan(0);
  });

  it('start_gateway again reuses the running gateway', async () => {
    const events = await run('start_gateway', plan);
    expect(events).toEqual([{ type: 'gateway.started', data: { container: plan.containers.gateway, ip: gatewayIp } }]);
  });

  it('start_agent provisions prompt, skills, ssh and the copied cwd for uid 1000 and points the agent at the gateway', async () => {
    const events = await run('start_agent', plan);

    expect(events).toEqual([{ type: 'agent.started', data: { container: plan.containers.agent, runtime: 'runc' } }]);
    const agent = docker.getContainer(plan.containers.agent);
    const listing = await execIn(agent, [
      'stat',
      '-c',
      '%n %u:%g %a',
      '/home/node/.claude-bottle/prompt.md',
      '/home/node/.claude/skills/tdd/SKILL.md',
      '/home/node/.ssh',
      '/home/node/.ssh/id_test',
      '/home/node/.ssh/config',
      `${plan.cwd}/main.ts`,
      `${plan.cwd}/.git/HEAD`,
    ]);
    expect(listing.output.trim().split('\n')).toEqual([
      '/home/node/.claude-bottle/prompt.md 1000:1000 644',
      '/home/node/.claude/skills/tdd/SKILL.md 1000:1000 644',
      '/home/node/.ssh 1000:1000 700',
      '/home/node/.ssh/id_test 1000:1000 600',
      '/home/node/.ssh/config 1000:1000 600',
      `${plan.cwd}/main.ts 1000:1000 644`,
      `${plan.cwd}/.git/HEAD 1000:1000 644`,
    ]);
    expect((await execIn(agent, ['cat', '/home/node/.ssh/config'])).output).toContain('Host github.com\n  IdentityFile /home/node/.ssh/id_test');
    expect((await execIn(agent, ['printenv', 'HTTPS_PROXY'])).output.trim()).toBe(`http://${gatewayIp}:3128`);
    expect((await execIn(agent, ['printenv', 'ANTHROPIC_BASE_URL'])).output.trim()).toBe(`http://${gatewayIp}:3129`);
    expect((await execIn(agent, ['id', '-un'])).output.trim()).toBe('node');
    // The init program gave its place to the agent's command once the gateway accepted.
    const pid1 = async () => (await execIn(agent, ['cat', '/proc/1/cmdline'])).output.split('\0').slice(0, 2);
    for (let i = 0; i < 50 && (await pid1())[0] !== 'sh'; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await pid1()).toEqual(['sh', '-c']);
    const probe = await execIn(agent, ['bash', '-c', `timeout 3 bash -c 'exec 3<>/dev/tcp/${gatewayIp}/3128 && head -1 <&3'`]);
    expect(probe.output.trim()).toBe('gateway');
  });

  it('start_agent again neither recreates nor restarts the agent', async () => {
    const before = await docker.getContainer(plan.containers.agent).inspect();
    await run('start_agent', plan);
    const after = await docker.getContainer(plan.containers.agent).inspect();
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
  });

  it('watch_agent records gateway decisions above the recorded mark, then the exit', async () => {
    const observed: NewEvent[] = [];
    const watching = run('watch_agent', plan, { observed, lastEgressDecision: 1 });
    // Let the stand-in gateway print its delayed capability line before the agent exits.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await execIn(docker.getContainer(plan.containers.agent), ['touch', '/tmp/go']);

    expect(await watching).toEqual([{ type: 'agent.exited', data: { code: 3, signal: null } }]);
    expect(observed).toEqual([
      { type: 'egress.denied', data: { n: 2, host: 'blocked.test', port: 443, method: 'CONNECT', reason: 'not_in_allowlist' } },
      { type: 'capability.requested', data: { request_id: 'req-1', kind: 'egress', host: 'blocked.test', port: 443, reason: 'needs it', queue_if_pending: true } },
    ]);
  });

  it('watch_agent retried after the exit drains only decisions not yet recorded', async () => {
    const observed: NewEvent[] = [];
    const events = await run('watch_agent', plan, { observed, lastEgressDecision: 2 });
    expect(events).toEqual([{ type: 'agent.exited', data: { code: 3, signal: null } }]);
    expect(observed.map((e) => e.data.n ?? e.data.request_id)).toEqual(['req-1']);
  });

  it("snapshot_transcript copies the agent's ~/.claude (its transcript and the provisioned skills) into the state folder", async () => {
    const events = await run('snapshot_transcript', plan);
    // projects/log.jsonl ("turn\n", 5 bytes) + skills/tdd/SKILL.md ("# tdd\n", 6 bytes)
    expect(events).toEqual([{ type: 'transcript.snapshotted', data: { files: 2, bytes: 11, missing: false } }]);
    expect(await readFile(join(statePaths(identity).transcript, 'projects', 'log.jsonl'), 'utf8')).toBe('turn\n');
  });

  it('cleanup removes every container, network, the host guard and the state folder', async () => {
    const events = await run('cleanup', plan);
    expect(events).toEqual([{ type: 'bottle.cleaned', data: {} }]);
    expect(await labelledCount(identity)).toBe(0);
    expect((await listHostGuards(docker, TEST_STANDIN_IMAGE)).filter((g) => g.identity === identity)).toEqual([]);
    expect(existsSync(statePaths(identity).dir)).toBe(false);
  });
});

describe('an agent container created for a gateway address that did not come true', () => {
  const identity = testIdentity('miss');
  identities.push(identity);

  it('is replaced by start_agent with one that names the gateway it has', async () => {
    const cwd = join(home, 'miss-cwd');
    await mkdir(cwd, { recursive: true });
    const plan = standInPlan(identity, { cwd });
    await run('create_networks', plan);
    const [gatewayStarted] = await run('start_gateway', plan);
    const gatewayIp = String(gatewayStarted.data.ip);
    // As if the early creation had guessed another address.
    await docker.getContainer(plan.containers.agent).remove({ force: true });
    const networks = { internal: (await inspectNetwork(docker, plan.networks.internal))!, egress: (await inspectNetwork(docker, plan.networks.egress))! };
    await docker.createContainer(agentContainerSpec(plan, { env: agentEnvironment(plan, '10.255.255.254'), networks }));

    expect(await run('start_agent', plan)).toEqual([{ type: 'agent.started', data: { container: plan.containers.agent, runtime: 'runc' } }]);

    const agent = await docker.getContainer(plan.containers.agent).inspect();
    expect(agent.State.Running).toBe(true);
    expect(agent.Config.Env).toContain(`HTTP_PROXY=http://${gatewayIp}:3128`);
    expect(agent.Config.Env!.join('\n')).not.toContain('10.255.255.254');
  });
});

describe('an agent started alongside a gateway that got another address than expected', () => {
  const identity = testIdentity('mist');
  identities.push(identity);

  it('is removed by start_gateway and made anew by start_agent, which then runs the command', async () => {
    const cwd = join(home, 'mist-cwd');
    await mkdir(cwd, { recursive: true });
    const plan = standInPlan(identity, {
      cwd,
      command: ['sh', '-c', 'touch /tmp/ran; exec sleep 600'],
    });
    await run('create_networks', plan);
    // Something else takes the first address on the internal network, the one the early agent is made for.
    const squatter = await docker.createContainer({
      Image: TEST_STANDIN_IMAGE,
      Cmd: ['sleep', '600'],
      Labels: testLabels(identity, 'squatter'),
      HostConfig: { NetworkMode: plan.networks.internal },
    });
    await squatter.start();
    const squatterIp = (await squatter.inspect()).NetworkSettings.Networks[plan.networks.internal].IPAddress;

    const [gatewayStarted] = await run('start_gateway', plan);
    const gatewayIp = String(gatewayStarted.data.ip);
    expect(gatewayIp).not.toBe(squatterIp);
    await expect(docker.getContainer(plan.containers.agent).inspect()).rejects.toMatchObject({ statusCode: 404 });

    expect(await run('start_agent', plan)).toEqual([{ type: 'agent.started', data: { container: plan.containers.agent, runtime: 'runc' } }]);
    const agent = docker.getContainer(plan.containers.agent);
    expect((await agent.inspect()).Config.Env).toContain(`HTTP_PROXY=http://${gatewayIp}:3128`);
    const ran = async () => (await execIn(agent, ['test', '-f', '/tmp/ran'])).code === 0;
    for (let i = 0; i < 50 && !(await ran()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await ran()).toBe(true);
  });
});

describe('a gateway that exits after binding its ports', () => {
  const identity = testIdentity('gdie');
  identities.push(identity);
  const plan = standInPlan(identity);

  it('fails start_agent permanently with the gateway\'s last words', async () => {
    await run('create_networks', plan);
    const networks = { internal: (await inspectNetwork(docker, plan.networks.internal))!, egress: (await inspectNetwork(docker, plan.networks.egress))! };
    const spec = gatewayContainerSpec(plan, { networks, image: TEST_STANDIN_IMAGE });
    spec.Entrypoint = ['sh', '-c', 'echo \'{"t":"listening","proxy_port":3128,"credential_port":3129}\'; echo "gateway: cannot parse its secrets" >&2; exit 1'];
    spec.Cmd = [];
    const gateway = await docker.createContainer(spec);
    await docker.getNetwork(plan.networks.internal).connect({ Container: gateway.id });
    await gateway.start();
    await gateway.wait();

    const failure = await run('start_agent', plan).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(PermanentEffectError);
    expect((failure as Error).message).toMatch(/gateway exited \(code 1\) before it was ready: .*cannot parse its secrets/);
  });
});

describe('a launch retried on an internal network made before bridges were address-less', () => {
  const identity = testIdentity('lgcy');
  identities.push(identity);
  const plan = standInPlan(identity);

  it('start_gateway installs the iptables host guard, and cleanup removes it with the networks', async () => {
    // What an earlier version's create_networks left behind: an internal bridge that holds the host's address.
    await docker.createNetwork({ Name: plan.networks.internal, Internal: true, CheckDuplicate: true, Labels: bottleLabels(identity, plan.agent, 'internal-network') });
    await docker.createNetwork({ Name: plan.networks.egress, CheckDuplicate: true, Labels: bottleLabels(identity, plan.agent, 'egress-network') });
    const internal = await inspectNetwork(docker, plan.networks.internal);
    expect(internal?.hostAddressless).toBe(false);

    await run('start_gateway', plan);

    const guards = (await listHostGuards(docker, TEST_STANDIN_IMAGE)).filter((g) => g.identity === identity);
    expect(guards).toEqual([{ identity, bridge: internal!.bridge }]);

    expect(await run('cleanup', plan)).toEqual([{ type: 'bottle.cleaned', data: {} }]);
    expect(await labelledCount(identity)).toBe(0);
    expect((await listHostGuards(docker, TEST_STANDIN_IMAGE)).filter((g) => g.identity === identity)).toEqual([]);
  });
});

describe('preservation handlers', () => {
  function freshPlan(): BottlePlan {
    const identity = testIdentity('pres');
    identities.push(identity);
    return testPlan(identity, { image: standInImagePlan(), gateway_image: standInImagePlan() });
  }

  it('preserve leaves the .preserve marker and a resume hint', async () => {
    const plan = freshPlan();
    const events = await run('preserve', plan, { params: { reason: 'crash' } });
    expect(events).toEqual([{ type: 'bottle.preserved', data: { reason: 'crash', resume_hint: `bottle resume ${plan.identity}` } }]);
    expect(JSON.parse(await readFile(statePaths(plan.identity).preserveMarker, 'utf8'))).toMatchObject({ reason: 'crash' });
  });

  it('apply_capability for a Dockerfile writes the per-bottle Dockerfile and preserves the bottle', async () => {
    const plan = freshPlan();
    const request = { request_id: 'r1', kind: 'dockerfile', dockerfile: 'FROM debian:bookworm-slim\nRUN true', reason: 'need a tool' };
    const events = await run('apply_capability', plan, { params: { request, approved_by: 'me' } });
    // No agent container exists here, so the snapshot reports it missing; the bottle is preserved regardless.
    expect(events.map((e) => e.type)).toEqual(['transcript.snapshotted', 'bottle.preserved']);
    expect(events[1]).toEqual({ type: 'bottle.preserved', data: { reason: 'capability', resume_hint: `bottle resume ${plan.identity}` } });
    expect(await readFile(statePaths(plan.identity).dockerfile, 'utf8')).toBe('FROM debian:bookworm-slim\nRUN true\n');
    expect(existsSync(statePaths(plan.identity).preserveMarker)).toBe(true);
  });

  it('apply_capability for egress adds the host (with a non-default port) to egress-extra.json', async () => {
    const plan = freshPlan();
    await run('apply_capability', plan, { params: { request: { kind: 'egress', host: 'a.example.test', port: 443 } } });
    await run('apply_capability', plan, { params: { request: { kind: 'egress', host: 'b.example.test', port: 8443 } } });
    const extra = JSON.parse(await readFile(join(statePaths(plan.identity).dir, 'egress-extra.json'), 'utf8'));
    expect(extra).toEqual({ hosts: ['a.example.test', 'b.example.test:8443'] });
  });

  it('teardown_failed keeps the state, marked as a failure', async () => {
    const plan = freshPlan();
    const events = await run('teardown_failed', plan, { params: { effect: 'start_agent', error: 'boom' } });
    expect(events).toEqual([{ type: 'bottle.failed', data: { effect: 'start_agent', error: 'boom' } }]);
    expect(JSON.parse(await readFile(statePaths(plan.identity).preserveMarker, 'utf8'))).toMatchObject({ reason: 'failure' });
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
    expect(await run('stop_agent', plan)).toEqual([]);
    expect((await agent.inspect()).State.ExitCode).toBe(143);
    await agent.remove({ force: true });
    expect(await run('stop_agent', plan)).toEqual([]);
  });
});
