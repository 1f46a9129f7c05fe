import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { removeBottleResources } from '../src/effects/docker/remove-bottle.js';
import { generateHostKeyPair, openSealedSecrets, sealSecrets } from '../src/shared/sealed-secrets.js';
import { publishHostKey, readHostPublicKey } from '../src/engine/host-keys.js';
import { identityFrom, PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../test/support/cli-harness.js';
import { startSecondDaemon, type SecondDaemon } from '../test/support/second-daemon.js';
import { outcomeOf, removeWhatIsLeft, SLEEPER, spawnWorker, stopWorker, untilWorkersLive } from './bottles.js';
import { median, type Row } from './stats.js';

/**
 * Hosts: N bottles started at once (`bottle start --host ID --detach` N
 * times side by side) on one host, against the same N spread over two hosts
 * (N/2 each), with one worker per host on one Redis. Host A is this
 * machine's daemon, host B a second dockerd on this same machine
 * (test/support/second-daemon.ts): both share its cores, so the second host
 * adds a daemon and a worker, not CPU. Rounds alternate between the two
 * layouts; each figure is the median over the rounds of the time from the
 * first spawn until the last bottle runs. Sealing is timed in process: what
 * a start adds to put its route secrets in the job (read the host's key from
 * Redis, seal) and what its launch adds to take them out (open).
 * BENCH_HOSTS_N (default 6) and BENCH_HOSTS_ROUNDS (default 3) change the
 * size and the rounds.
 */

const AGENT = 'hosts';
// Built on each daemon by its worker; needs no network (the second daemon reaches nothing but this machine).
const BARE_DOCKERFILE =
  'FROM debian:bookworm-slim\n' +
  'RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --home-dir /home/node node\n' +
  'USER node\nWORKDIR /home/node\n';
const CLI_TIMEOUT_MS = 600_000;
const SEAL_SAMPLES = 200;

interface Round {
  layout: 'one' | 'two';
  failures: string[];
  allRunningMs: number;
  startsMs: number[];
}

function integerFromEnv(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: an integer of at least ${min}`);
  return value;
}

async function runRound(
  h: BottleHarness,
  manifest: string,
  hosts: Array<{ id: string; docker: Docker }>,
  n: number,
  started: Map<string, Docker>,
): Promise<Omit<Round, 'layout'>> {
  const targets = Array.from({ length: n }, (_, i) => hosts[i % hosts.length]);
  const spawnedAt = Date.now();
  const results = await Promise.all(
    targets.map((host) =>
      h.cli(['--manifest', manifest, 'start', AGENT, '--host', host.id, '--detach'], { timeoutMs: CLI_TIMEOUT_MS }),
    ),
  );
  const failures: string[] = [];
  const identities: string[] = [];
  results.forEach((result, i) => {
    try {
      const identity = identityFrom(result);
      identities.push(identity);
      started.set(identity, targets[i].docker);
    } catch {
      failures.push(`start exited ${result.code}: ${result.stderr.trim().split('\n').at(-1) ?? ''}`);
    }
  });
  const startsMs: number[] = [];
  let lastRunningAt = NaN;
  for (const identity of identities) {
    const outcome = outcomeOf(identity, await h.log.read(identity));
    if (outcome?.kind !== 'running') {
      failures.push(`${identity}: never ran`);
      continue;
    }
    startsMs.push(outcome.startMs);
    if (!(outcome.runningAt <= lastRunningAt)) lastRunningAt = outcome.runningAt;
  }
  const stops = await Promise.all(identities.map((id) => h.cli(['stop', id], { timeoutMs: CLI_TIMEOUT_MS })));
  stops.forEach((s, i) => s.code !== 0 && failures.push(`stop ${identities[i]} exited ${s.code}`));
  for (const identity of identities) {
    if ((await removeWhatIsLeft(started.get(identity)!, identity)) > 0) failures.push(`${identity}: left resources`);
  }
  return { failures, allRunningMs: lastRunningAt - spawnedAt, startsMs };
}

/** Per start, in process: the CLI reads the host's key and seals; the worker opens. Medians in ms. */
async function sealingCost(h: BottleHarness): Promise<{ readKey: number; seal: number; open: number }> {
  const keys = generateHostKeyPair();
  const host = 'bench-host';
  const identity = 'hosts-bench1';
  // Two routes, as a bottle with a GitHub token and an Anthropic key has.
  const secrets = {
    'route-0': `ghp_${randomBytes(18).toString('hex')}`,
    'route-1': `sk-${randomBytes(40).toString('hex')}`,
  };
  const redis = h.redis.connect();
  const readKey: number[] = [];
  const seal: number[] = [];
  const open: number[] = [];
  try {
    await publishHostKey(redis, host, keys.publicKey);
    for (let i = 0; i < SEAL_SAMPLES; i++) {
      let t = performance.now();
      const publicKey = (await readHostPublicKey(redis, host))!;
      readKey.push(performance.now() - t);
      t = performance.now();
      const blob = sealSecrets(secrets, { identity, host, publicKey });
      seal.push(performance.now() - t);
      t = performance.now();
      openSealedSecrets(blob, { identity, host, keys });
      open.push(performance.now() - t);
    }
  } finally {
    redis.disconnect();
  }
  return { readKey: median(readKey), seal: median(seal), open: median(open) };
}

export async function benchHosts(
  n = integerFromEnv('BENCH_HOSTS_N', 6, 2),
  rounds = integerFromEnv('BENCH_HOSTS_ROUNDS', 3, 1),
): Promise<Row[]> {
  const suffix = randomBytes(3).toString('hex');
  const hostA = `bench-a-${suffix}`;
  const hostB = `bench-b-${suffix}`;
  const h = await startHarness();
  let b: SecondDaemon | undefined;
  const workers: ChildProcess[] = [];
  const started = new Map<string, Docker>();
  try {
    b = await startSecondDaemon({ shutdownTimeoutSeconds: 5 });
    const manifest = h.writeManifest(
      {
        bottles: [
          { name: 'hosts', dockerfile: './bare.Dockerfile', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS },
        ],
        agents: [{ name: AGENT, bottle: 'hosts', command: SLEEPER }],
      },
      { 'bare.Dockerfile': BARE_DOCKERFILE },
    );
    workers.push(spawnWorker(h, ['--host', hostA]), spawnWorker(h, ['--host', hostB], { DOCKER_HOST: b.dockerHost }));
    const bothLive = (live: Array<{ hostId: string }>) =>
      [hostA, hostB].every((id) => live.some((w) => w.hostId === id));
    await untilWorkersLive(h, `the workers of ${hostA} and ${hostB}`, bothLive);
    const a = { id: hostA, docker: h.docker };
    const second = { id: hostB, docker: b.docker };
    // One bottle on each host first: each worker builds the images on its daemon; not counted.
    const warmup = await runRound(h, manifest, [a, second], 2, started);
    if (warmup.failures.length > 0) throw new Error(`hosts: the warm-up failed: ${warmup.failures.join('; ')}`);

    const results: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      results.push({ layout: 'one', ...(await runRound(h, manifest, [a], n, started)) });
      results.push({ layout: 'two', ...(await runRound(h, manifest, [a, second], n, started)) });
    }
    const of = (layout: Round['layout']) => results.filter((r) => r.layout === layout);
    const allRunning = (layout: Round['layout']) => median(of(layout).map((r) => r.allRunningMs));
    const starts = (layout: Round['layout']) => median(of(layout).flatMap((r) => r.startsMs));
    const failures = results.flatMap((r) => r.failures);
    for (const failure of failures.slice(0, 5)) console.error(`  hosts failure: ${failure}`);
    const sealing = await sealingCost(h);
    const sealPerStart = sealing.readKey + sealing.seal + sealing.open;
    const oneHost = allRunning('one');
    return [
      { metric: `rounds per layout (N=${n})`, value: rounds, unit: 'rounds' },
      { metric: 'failures', value: failures.length, unit: 'bottles', target: '0' },
      { metric: `one host: ${n} at once, first spawn -> all running (median)`, value: oneHost, unit: 'ms' },
      {
        metric: `two hosts: ${Math.ceil(n / 2)}+${Math.floor(n / 2)} at once, first spawn -> all running (median)`,
        value: allRunning('two'),
        unit: 'ms',
        baseline: oneHost,
      },
      { metric: 'one host: per-bottle start p50 (start_requested -> running)', value: starts('one'), unit: 'ms' },
      {
        metric: 'two hosts: per-bottle start p50',
        value: starts('two'),
        unit: 'ms',
        baseline: starts('one'),
      },
      { metric: 'sealing per start: read the host key from Redis (CLI)', value: sealing.readKey, unit: 'ms' },
      { metric: 'sealing per start: seal two route secrets (CLI)', value: sealing.seal, unit: 'ms' },
      { metric: 'sealing per start: open them (worker)', value: sealing.open, unit: 'ms' },
      {
        metric: 'sealing per start, in all (baseline: a start on one host)',
        value: sealPerStart,
        unit: 'ms',
        baseline: starts('one'),
      },
    ];
  } finally {
    for (const [identity, docker] of started) await removeBottleResources(docker, identity).catch(() => undefined);
    for (const worker of workers) await stopWorker(worker);
    await h.cleanup();
    await b?.stop();
  }
}
