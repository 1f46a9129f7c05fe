import type Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { agentInitEntry, agentLaunch, type AgentLaunch } from '../src/effects/docker/agent-init.js';
import { agentContainerSpec, gatewayContainerSpec, GATEWAY_UID } from '../src/effects/docker/containers.js';
import { waitForGatewayReady, waitForReadyLine } from '../src/effects/docker/logs.js';
import { netwatchContainerSpec } from '../src/effects/netwatch/netwatch-container.js';
import { NETWATCH_READY_LINE, netwatchSentinel } from '../src/netwatch/protocol.js';
import { ADDRESSLESS_BRIDGE_OPTION, isSubnetTaken } from '../src/effects/docker/networks.js';
import { putEntries } from '../src/effects/docker/provision.js';
import { removeBottleResources } from '../src/effects/docker/remove-bottle.js';
import { gatewayConfigFor } from '../src/effects/start-gateway.js';
import type { LifecycleEvent } from '../src/events/schema.js';
import {
  GATEWAY_CONFIG_PATH,
  GATEWAY_FILES_DIR,
  GATEWAY_NETWATCH_TOKEN_PATH,
  GATEWAY_SECRETS_PATH,
} from '../src/gateway/protocol.js';
import type { NetworkLayout } from '../src/machines/context.js';
import { agentEnvironment } from '../src/plan/agent-env.js';
import type { BottlePlan } from '../src/plan/schema.js';
import { bottleLabels, resourceNames } from '../src/shared/names.js';
import { subnetAddresses, subnetCandidates, subnetPool, type Ipv4Cidr } from '../src/shared/subnet-pool.js';
import {
  BOTTLE_BIN,
  identityFrom,
  PIN_DEFAULT_HOSTS,
  startHarness,
  type BottleHarness,
} from '../test/support/cli-harness.js';
import { median, type Row } from './stats.js';

/**
 * Warm start (images cached): `bottle start demo-sleeper --detach`, from
 * process spawn until the bottle is running (the later of `gateway.ready` and
 * `netwatch.started` in the log), and until the CLI exits right after it, next
 * to the same Docker work done with raw dockerode calls in the same run: the
 * two networks on explicit /29 subnets from the pool (the internal one without
 * a host address), the gateway from the same image at its fixed address with
 * the same config copied in, the agent with the same hardening, address and
 * init program, then the network watch joined to the agent's namespace and
 * waited on until it records. A second baseline adds the step that makes the tool's bottle
 * "running" and the bare sequence skips (waiting for the gateway's ready
 * line), so the ratio can be read both ways. Per-phase medians come from the
 * bottles' event timestamps (each includes the queue hop to the next effect).
 *
 * The raw sequence is deliberately plain: one call after the other, the agent
 * created and started once the gateway's start has returned, the ready line
 * waited for last. The tool starts the gateway and the agent side by side
 * once the networks exist (the agent's init program holds its command back
 * until the proxy accepts), so its time inside the log can beat the raw
 * sequence's.
 */

const AGENT = 'demo-sleeper';
/** Not an event: the bottle is running once both the gateway is ready and the agent has started. */
const RUNNING = 'running';
const PHASES: Array<[from: string, to: string, label: string]> = [
  ['bottle.start_requested', 'bottle.prepared', 'prepare state'],
  ['bottle.prepared', 'image.built', 'image check (cached)'],
  ['image.built', 'network.created', 'networks'],
  ['network.created', 'gateway.started', 'gateway create+connect+config+start'],
  ['gateway.started', 'gateway.ready', 'gateway started -> enforcing (ready line)'],
  ['network.created', 'agent.started', 'agent create+provision+start (beside the gateway)'],
  ['agent.started', 'netwatch.started', 'network watch create+start+ready (in the agent namespace)'],
  ['network.created', RUNNING, 'networks -> running (later of gateway.ready, netwatch.started)'],
];

interface CliRound {
  wallMs: number;
  /** Wall clock at spawn, to compare with the events' own timestamps. */
  spawnedAt: number;
  identity: string;
  events: LifecycleEvent[];
}

async function timedCli(h: BottleHarness, manifest: string, env: NodeJS.ProcessEnv = h.env): Promise<CliRound> {
  const spawnedAt = Date.now();
  const t0 = performance.now();
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const args = [BOTTLE_BIN, '--manifest', manifest, 'start', AGENT, '--detach', '--yes'];
    const child = spawn(process.execPath, args, { cwd: h.project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
  const wallMs = performance.now() - t0;
  if (result.code !== 0) throw new Error(`bottle start failed (${result.code}): ${result.stderr}`);
  const identity = identityFrom(result);
  return { wallMs, spawnedAt, identity, events: await h.log.read(identity) };
}

/** Wall time of a bare `node -e 0`: what any Node program pays before its first line in this environment. */
async function timedNodeBoot(env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '0'], { env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve());
  });
  return performance.now() - t0;
}

/** Ends a CLI-started bottle through its lifecycle (SIGKILL -> preserved -> resources removed by the worker). */
async function endBottle(h: BottleHarness, identity: string): Promise<void> {
  const agent = h.docker.getContainer(resourceNames(identity).agentContainer);
  await agent.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  await h.waitForEvent(identity, 'bottle.preserved', 60_000);
}

function rawIdentity(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  return `benchraw-${[...randomBytes(5)].map((b) => alphabet[b % 36]).join('')}`;
}

/** The plan of a CLI-made bottle, re-targeted at fresh names for the raw sequence. */
function rawPlan(template: BottlePlan, identity: string): BottlePlan {
  const names = resourceNames(identity);
  return {
    ...template,
    identity,
    networks: { internal: names.internalNetwork, egress: names.egressNetwork },
    containers: { gateway: names.gatewayContainer, agent: names.agentContainer, netwatch: names.netwatchContainer },
  };
}

/** The bare Docker work of a launch, no inspect-before-create, no queue, no event log. */
type RawPhases = Record<'networks' | 'gateway' | 'agent' | 'netwatch' | 'gateway_ready', number>;

/**
 * One network on an explicit /29 of the pool, as a plain script would ask for
 * it: the first candidate subnet, the next one only when the daemon says it
 * overlaps a network it already has (other bottles on this machine).
 */
async function rawNetwork(
  docker: Docker,
  pool: Ipv4Cidr,
  name: string,
  internal: boolean,
  labels: Record<string, string>,
): Promise<{ name: string; subnet: string }> {
  for (const subnet of subnetCandidates(pool, name)) {
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: internal,
        Labels: labels,
        IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: subnetAddresses(subnet).bridge }] },
        ...(internal ? { Options: { [ADDRESSLESS_BRIDGE_OPTION]: 'true' } } : {}),
      });
      return { name, subnet };
    } catch (err) {
      if (!isSubnetTaken(err)) throw err;
    }
  }
  throw new Error(`no free /29 left in the pool for ${name}`);
}

interface RawSetup {
  pool: Ipv4Cidr;
  /** The agent's entrypoint and command, as the tool derives them from the image (looked up once). */
  launch: AgentLaunch;
}

async function rawLaunch(
  docker: Docker,
  plan: BottlePlan,
  setup: RawSetup,
  withReadyWait: boolean,
  phases?: RawPhases,
): Promise<number> {
  const t0 = performance.now();
  let mark = t0;
  const lap = (phase: keyof RawPhases) => {
    const now = performance.now();
    if (phases) phases[phase] = now - mark;
    mark = now;
  };
  const labels = (role: string) => bottleLabels(plan.identity, plan.agent, role);
  const internal = await rawNetwork(docker, setup.pool, plan.networks.internal, true, labels('internal-network'));
  const egress = await rawNetwork(docker, setup.pool, plan.networks.egress, false, labels('egress-network'));
  const { gateway: gatewayIp, agent: agentIp, pipelock: pipelockIp } = subnetAddresses(internal.subnet);
  const addresses = { gateway: gatewayIp, agent: agentIp, pipelock: pipelockIp };
  const network: NetworkLayout = { internal, egress, addresses };
  lap('networks');

  const gateway = await docker.createContainer(gatewayContainerSpec(plan, { network }));
  const endpoint = { IPAMConfig: { IPv4Address: gatewayIp } };
  await docker.getNetwork(internal.name).connect({ Container: gateway.id, EndpointConfig: endpoint });
  const config = JSON.stringify(gatewayConfigFor(plan));
  const token = randomBytes(32).toString('hex');
  const owned = { mode: 0o400, uid: GATEWAY_UID, gid: GATEWAY_UID };
  await putEntries(
    gateway,
    [
      { type: 'file', path: GATEWAY_CONFIG_PATH, mode: 0o444, uid: 0, gid: 0, content: config },
      { type: 'file', path: GATEWAY_SECRETS_PATH, ...owned, content: '{}' },
      { type: 'file', path: GATEWAY_NETWATCH_TOKEN_PATH, ...owned, content: token },
    ],
    GATEWAY_FILES_DIR,
  );
  await gateway.start();
  lap('gateway');

  const env = agentEnvironment(plan, { gatewayIp, sentinel: netwatchSentinel(network.internal.subnet) });
  const agent = await docker.createContainer(agentContainerSpec(plan, { env, network, launch: setup.launch }));
  await putEntries(agent, [agentInitEntry()]);
  await agent.start();
  lap('agent');
  const watch = await docker.createContainer(netwatchContainerSpec(plan, network, plan.containers.netwatch!, token));
  await watch.start();
  await waitForReadyLine(watch, 'the network watch', (line) => line === NETWATCH_READY_LINE);
  lap('netwatch');
  if (withReadyWait) await waitForGatewayReady(gateway);
  lap('gateway_ready');
  return performance.now() - t0;
}

/** When the event of `type` was appended; RUNNING is the later of gateway.ready and the watched agent's start. */
const at = (events: LifecycleEvent[], type: string): number => {
  if (type === RUNNING) return Math.max(at(events, 'gateway.ready'), at(events, 'netwatch.started'));
  const e = events.find((x) => x.type === type);
  return e ? Date.parse(e.at) : NaN;
};

export async function benchWarmStart(rounds = 15): Promise<Row[]> {
  const h = await startHarness();
  const rawIds: string[] = [];
  try {
    const manifest = h.writeManifest({
      bottles: [{ name: 'bench', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: AGENT, bottle: 'bench', command: ['sleep', '600'] }],
    });
    // Warm-up: builds or finds the images, starts the local worker, and gives the plan the raw sequence reuses.
    const warm = await timedCli(h, manifest);
    await endBottle(h, warm.identity);
    const template = (warm.events.find((e) => e.type === 'bottle.start_requested')!.data as { plan: BottlePlan }).plan;
    // What a script author would write down once: the pool, and the agent's entrypoint and command.
    const launch = await agentLaunch(h.docker, template.image.tag, template.command);
    const setup: RawSetup = { pool: subnetPool(h.env), launch };

    // Node reads the file NODE_EXTRA_CA_CERTS names when it starts, whatever it runs (~40 ms for
    // Debian's bundle here): a cost of the caller's environment, so it is also measured without.
    const extraCaCerts = Boolean(h.env.NODE_EXTRA_CA_CERTS);
    const envWithoutExtraCa = { ...h.env };
    delete envWithoutExtraCa.NODE_EXTRA_CA_CERTS;
    const cli: CliRound[] = [];
    const cliWithoutExtraCa: CliRound[] = [];
    const nodeBoot: number[] = [];
    const nodeBootWithoutExtraCa: number[] = [];
    const bare: number[] = [];
    const safe: number[] = [];
    const safePhases: RawPhases[] = [];
    for (let i = 0; i < rounds; i++) {
      // Interleaved so drift on the machine hits both sides alike.
      const round = await timedCli(h, manifest);
      cli.push(round);
      await endBottle(h, round.identity);
      if (extraCaCerts) {
        const plain = await timedCli(h, manifest, envWithoutExtraCa);
        cliWithoutExtraCa.push(plain);
        await endBottle(h, plain.identity);
        nodeBoot.push(await timedNodeBoot(h.env));
        nodeBootWithoutExtraCa.push(await timedNodeBoot(envWithoutExtraCa));
      }
      for (const [withReadyWait, samples] of [
        [false, bare],
        [true, safe],
      ] as const) {
        const id = rawIdentity();
        rawIds.push(id);
        try {
          const phases = { networks: 0, gateway: 0, agent: 0, netwatch: 0, gateway_ready: 0 };
          samples.push(await rawLaunch(h.docker, rawPlan(template, id), setup, withReadyWait, phases));
          if (withReadyWait) safePhases.push(phases);
        } finally {
          await removeBottleResources(h.docker, id);
        }
      }
    }

    const cliMedian = median(cli.map((r) => r.wallMs));
    const untilRunning = median(cli.map((r) => at(r.events, RUNNING) - r.spawnedAt));
    const rawMedian = median(bare);
    const enqueueToRunning = median(cli.map((r) => at(r.events, RUNNING) - Date.parse(r.events[0].at)));
    const rows: Row[] = [
      {
        metric: 'bottle start --detach, spawn to running (median)',
        value: untilRunning,
        unit: 'ms',
        baseline: rawMedian,
        target: '<= 1.2x raw',
      },
      { metric: 'bottle start --detach, spawn to exit (median)', value: cliMedian, unit: 'ms', baseline: rawMedian },
      { metric: 'same, vs raw + gateway ready wait', value: cliMedian, unit: 'ms', baseline: median(safe) },
      { metric: 'first event -> running (event log)', value: enqueueToRunning, unit: 'ms', baseline: rawMedian },
      { metric: 'raw dockerode sequence (median)', value: rawMedian, unit: 'ms' },
      { metric: 'raw + ready wait (median)', value: median(safe), unit: 'ms' },
    ];
    if (extraCaCerts) {
      rows.splice(
        1,
        0,
        {
          metric: 'same, with NODE_EXTRA_CA_CERTS unset for the CLI (median)',
          value: median(cliWithoutExtraCa.map((r) => at(r.events, RUNNING) - r.spawnedAt)),
          unit: 'ms',
          baseline: rawMedian,
        },
        { metric: '  node -e 0 with this environment (median)', value: median(nodeBoot), unit: 'ms' },
        {
          metric: '  node -e 0 without NODE_EXTRA_CA_CERTS (median)',
          value: median(nodeBootWithoutExtraCa),
          unit: 'ms',
        },
      );
    }
    for (const [from, to, label] of PHASES) {
      const value = median(cli.map((r) => at(r.events, to) - at(r.events, from)));
      rows.push({ metric: `  phase: ${label}`, value, unit: 'ms' });
    }
    for (const phase of ['networks', 'gateway', 'agent', 'netwatch', 'gateway_ready'] as const) {
      const value = median(safePhases.map((p) => p[phase]));
      rows.push({ metric: `  raw (with ready wait): ${phase}`, value, unit: 'ms' });
    }
    rows.push({
      metric: '  CLI outside the log (spawn..first event + running..exit)',
      value: median(cli.map((r) => r.wallMs - (at(r.events, RUNNING) - Date.parse(r.events[0].at)))),
      unit: 'ms',
    });
    return rows;
  } finally {
    for (const id of rawIds) await removeBottleResources(h.docker, id).catch(() => undefined);
    await h.cleanup();
  }
}
