import type Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  agentContainerSpec,
  gatewayContainerSpec,
  GATEWAY_CONFIG_PATH,
  GATEWAY_FILES_DIR,
  GATEWAY_SECRETS_PATH,
  GATEWAY_UID,
} from '../src/effects/docker/containers.js';
import { waitForGatewayReady } from '../src/effects/docker/logs.js';
import { ADDRESSLESS_BRIDGE_OPTION, describeNetwork, type BottleNetworks } from '../src/effects/docker/networks.js';
import { putEntries } from '../src/effects/docker/provision.js';
import { removeBottleResources } from '../src/effects/docker/teardown.js';
import { gatewayConfigFor } from '../src/effects/handlers.js';
import type { LifecycleEvent } from '../src/events/schema.js';
import { agentEnvironment } from '../src/plan/agent-env.js';
import type { BottlePlan } from '../src/plan/schema.js';
import { bottleLabels, resourceNames } from '../src/shared/names.js';
import { BOTTLE_BIN, identityFrom, PIN_DEFAULT_HOSTS, REPO, startHarness, type BottleHarness } from '../test/support/cli-harness.js';
import { median, type Row } from './stats.js';

/**
 * Warm start (images cached): `bottle start demo-sleeper --detach`, from
 * process spawn until the running event (`agent.started`) is in the log, and
 * until the CLI exits right after it, next to the same Docker work done with raw dockerode calls in the same
 * run: two networks, the gateway from the same image with the same config
 * copied in, the agent with the same hardening. A second baseline adds the
 * safety step the effects take that the bare sequence skips (waiting for the
 * gateway's ready line before the agent starts), so the ratio can be read both ways. Per-phase medians come from the bottles' event
 * timestamps (each includes the queue hop to the next effect).
 *
 * The raw sequence is deliberately plain: one call after the other, the agent
 * container created and started once the gateway's start has returned. The
 * tool starts the agent's container while the gateway's is still starting
 * (behind its init program), so its "gateway" phase holds most of the agent's
 * start too, and its time inside the log can beat the raw sequence's.
 */

const AGENT = 'demo-sleeper';
const PHASES: Array<[from: string, to: string, label: string]> = [
  ['bottle.start_requested', 'bottle.prepared', 'prepare state'],
  ['bottle.prepared', 'image.built', 'image check (cached)'],
  ['image.built', 'network.created', 'networks'],
  ['network.created', 'gateway.started', 'gateway create+config+start+ready'],
  ['gateway.started', 'agent.started', 'agent create+provision+start'],
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
    const child = spawn(process.execPath, [BOTTLE_BIN, '--manifest', manifest, 'start', AGENT, '--detach'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
  await h.docker.getContainer(resourceNames(identity).agentContainer).kill({ signal: 'SIGKILL' }).catch(() => undefined);
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
    containers: { gateway: names.gatewayContainer, agent: names.agentContainer },
  };
}

/** The bare Docker work of a launch, no inspect-before-create, no queue, no event log. */
type RawPhases = Record<'networks' | 'gateway' | 'gateway_ready' | 'agent', number>;

async function rawLaunch(docker: Docker, plan: BottlePlan, withSafetySteps: boolean, phases?: RawPhases): Promise<number> {
  const t0 = performance.now();
  let mark = t0;
  const lap = (phase: keyof RawPhases) => {
    const now = performance.now();
    if (phases) phases[phase] = now - mark;
    mark = now;
  };
  const labels = (role: string) => bottleLabels(plan.identity, plan.agent, role);
  await docker.createNetwork({ Name: plan.networks.internal, Driver: 'bridge', Internal: true, Labels: labels('internal-network'), Options: { [ADDRESSLESS_BRIDGE_OPTION]: 'true' } });
  await docker.createNetwork({ Name: plan.networks.egress, Driver: 'bridge', Internal: false, Labels: labels('egress-network') });
  const networks: BottleNetworks = {
    internal: describeNetwork(await docker.getNetwork(plan.networks.internal).inspect()),
    egress: describeNetwork(await docker.getNetwork(plan.networks.egress).inspect()),
  };
  lap('networks');

  const gateway = await docker.createContainer(gatewayContainerSpec(plan, { networks }));
  await docker.getNetwork(networks.internal.name).connect({ Container: gateway.id });
  await putEntries(
    gateway,
    [
      { type: 'file', path: GATEWAY_CONFIG_PATH, mode: 0o444, uid: 0, gid: 0, content: JSON.stringify(gatewayConfigFor(plan, networks)) },
      { type: 'file', path: GATEWAY_SECRETS_PATH, mode: 0o400, uid: GATEWAY_UID, gid: GATEWAY_UID, content: '{}' },
    ],
    GATEWAY_FILES_DIR,
  );
  await gateway.start();
  lap('gateway');
  if (withSafetySteps) await waitForGatewayReady(gateway);
  lap('gateway_ready');
  const gatewayIp = (await gateway.inspect()).NetworkSettings.Networks[networks.internal.name].IPAddress;

  const agent = await docker.createContainer(agentContainerSpec(plan, { env: agentEnvironment(plan, gatewayIp), networks }));
  await agent.start();
  lap('agent');
  return performance.now() - t0;
}

const at = (events: LifecycleEvent[], type: string) => {
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
      for (const [withSafety, samples] of [
        [false, bare],
        [true, safe],
      ] as const) {
        const id = rawIdentity();
        rawIds.push(id);
        try {
          const phases = { networks: 0, gateway: 0, gateway_ready: 0, agent: 0 };
          samples.push(await rawLaunch(h.docker, rawPlan(template, id), withSafety, phases));
          if (withSafety) safePhases.push(phases);
        } finally {
          await removeBottleResources(h.docker, id, { guardImage: template.gateway_image.tag });
        }
      }
    }

    const cliMedian = median(cli.map((r) => r.wallMs));
    const untilRunning = median(cli.map((r) => at(r.events, 'agent.started') - r.spawnedAt));
    const rawMedian = median(bare);
    const enqueueToStarted = median(cli.map((r) => at(r.events, 'agent.started') - Date.parse(r.events[0].at)));
    const rows: Row[] = [
      { metric: 'bottle start --detach, spawn to the running event (median)', value: untilRunning, unit: 'ms', baseline: rawMedian, target: '<= 1.2x raw' },
      { metric: 'bottle start --detach, spawn to exit (median)', value: cliMedian, unit: 'ms', baseline: rawMedian },
      { metric: 'same, vs raw + gateway ready wait', value: cliMedian, unit: 'ms', baseline: median(safe) },
      { metric: 'first event -> agent.started (event log)', value: enqueueToStarted, unit: 'ms', baseline: rawMedian },
      { metric: 'raw dockerode sequence (median)', value: rawMedian, unit: 'ms' },
      { metric: 'raw + ready wait (median)', value: median(safe), unit: 'ms' },
    ];
    if (extraCaCerts) {
      rows.splice(
        1,
        0,
        {
          metric: 'same, with NODE_EXTRA_CA_CERTS unset for the CLI (median)',
          value: median(cliWithoutExtraCa.map((r) => at(r.events, 'agent.started') - r.spawnedAt)),
          unit: 'ms',
          baseline: rawMedian,
        },
        { metric: '  node -e 0 with this environment (median)', value: median(nodeBoot), unit: 'ms' },
        { metric: '  node -e 0 without NODE_EXTRA_CA_CERTS (median)', value: median(nodeBootWithoutExtraCa), unit: 'ms' },
      );
    }
    for (const [from, to, label] of PHASES) {
      rows.push({ metric: `  phase: ${label}`, value: median(cli.map((r) => at(r.events, to) - at(r.events, from))), unit: 'ms' });
    }
    for (const phase of ['networks', 'gateway', 'gateway_ready', 'agent'] as const) {
      rows.push({ metric: `  raw (with safety steps): ${phase}`, value: median(safePhases.map((p) => p[phase])), unit: 'ms' });
    }
    rows.push({
      metric: '  CLI outside the log (spawn..first event + agent.started..exit)',
      value: median(cli.map((r) => r.wallMs - (at(r.events, 'agent.started') - Date.parse(r.events[0].at)))),
      unit: 'ms',
    });
    return rows;
  } finally {
    for (const id of rawIds) await removeBottleResources(h.docker, id).catch(() => undefined);
    await h.cleanup();
  }
}
