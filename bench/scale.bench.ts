import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resourceNames } from '../src/shared/names.js';
import { PIN_DEFAULT_HOSTS, startHarness, type BottleHarness } from '../test/support/cli-harness.js';
import {
  outcomeOf,
  removeWhatIsLeft,
  SLEEPER,
  spawnWorker,
  stopWorker,
  untilWorkersLive,
  type Outcome,
} from './bottles.js';
import { median, percentile, type Row } from './stats.js';

/**
 * Scale: N bottles started at once (`bottle start --detach` N times side by
 * side, one local worker), for each N: the time from the first spawn until
 * the last bottle is running, each bottle's own start (its start_requested
 * to the event that folds it into `running`), failures, and memory. Timing
 * figures stand next to a single bottle's start measured in the same run, so
 * the ratio says how starts slow down with company. Memory is the gateway's
 * (one per bottle: the resident set of its Node process, and the
 * container's memory as `docker stats` counts it) and the worker's growth
 * per bottle, sampled while the bottles start and once they all run.
 * BENCH_SCALE_SIZES and BENCH_SCALE_WORKER_CONCURRENCY change the rounds and
 * the worker's concurrency (default: the worker the first CLI starts).
 */

const AGENT = 'scale';
const MB = 1024 * 1024;
const GATEWAY_RSS_TARGET_MB = 40;
const RUNNING_TIMEOUT_MS = 900_000;
const STALL_MS = 120_000;
/** What `bottle worker` runs with unless told otherwise. */
const DEFAULT_WORKER_CONCURRENCY = 32;

/** A figure of /proc/PID/status or smaps_rollup in bytes (host pid namespace), undefined once the process is gone. */
function procFigure(pid: number, file: 'status' | 'smaps_rollup', field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const residentBytes = (pid: number) => procFigure(pid, 'status', 'VmRSS');

/**
 * `bottle worker --concurrency N` started by the bench itself instead of the
 * one the first CLI starts (with the default concurrency), when
 * BENCH_SCALE_WORKER_CONCURRENCY asks for it.
 */
async function startOwnWorker(h: BottleHarness, concurrency: string): Promise<ChildProcess> {
  const child = spawnWorker(h, ['--concurrency', concurrency]);
  const up = (live: Array<{ pid: number }>) => live.some((w) => w.pid === child.pid);
  await untilWorkersLive(h, `bottle worker --concurrency ${concurrency}`, up, child).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return child;
}

let ownWorker: ChildProcess | undefined;

function workerPid(h: BottleHarness): number | undefined {
  if (ownWorker?.pid) return ownWorker.pid;
  const file = join(h.home, 'worker', 'worker.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
}

interface GatewayMemory {
  /** VmRSS of the gateway's Node process. */
  rss: number;
  /** Its anonymous part (heaps, stacks): what this gateway alone holds. */
  anon: number;
  /** Its proportional set: file pages (the Node binary) shared with the other gateways count once in total. */
  pss: number;
  /** What `docker stats` shows: the cgroup's usage without the page cache. */
  cgroup: number;
}

async function gatewayMemory(h: BottleHarness, identity: string): Promise<GatewayMemory | undefined> {
  const container = h.docker.getContainer(resourceNames(identity).gatewayContainer);
  const info = await container.inspect().catch(() => undefined);
  const pid = info?.State.Pid;
  if (!pid) return undefined;
  const rss = residentBytes(pid);
  const anon = procFigure(pid, 'status', 'RssAnon');
  const pss = procFigure(pid, 'smaps_rollup', 'Pss');
  if (rss === undefined || anon === undefined || pss === undefined) return undefined;
  const stats = (await container.stats({ stream: false })) as {
    memory_stats?: { usage?: number; stats?: Record<string, number> };
  };
  const usage = stats.memory_stats?.usage ?? NaN;
  const cache = stats.memory_stats?.stats?.total_inactive_file ?? stats.memory_stats?.stats?.cache ?? 0;
  return { rss, anon, pss, cgroup: usage - cache };
}

interface Round {
  n: number;
  failures: string[];
  allRunningMs: number;
  startsMs: number[];
  gateways: GatewayMemory[];
  workerIdle: number;
  workerRunning: number;
  workerPeak: number;
}

async function runRound(h: BottleHarness, manifest: string, n: number): Promise<Round> {
  const pid = workerPid(h);
  const workerIdle = (pid && residentBytes(pid)) || NaN;
  let workerPeak = workerIdle;
  const sampleWorker = () => {
    const now = pid ? residentBytes(pid) : undefined;
    if (now !== undefined && !(now <= workerPeak)) workerPeak = now;
  };
  const sampler = setInterval(sampleWorker, 200);

  const spawnedAt = Date.now();
  const clis = Array.from({ length: n }, () => h.startDetached(['--manifest', manifest, 'start', AGENT, '--detach']));
  const printed = await Promise.all(clis.map((c) => c.identity));
  const failures: string[] = [];
  const identities = printed.filter((identity) => identity !== '');

  const outcomes = new Map<string, Outcome>();
  const deadline = Date.now() + RUNNING_TIMEOUT_MS;
  // A round whose unfinished bottles append nothing for this long is stuck, not slow.
  let lastProgress = Date.now();
  const seen = new Map<string, number>();
  while (outcomes.size < identities.length && Date.now() < deadline && Date.now() - lastProgress < STALL_MS) {
    for (const identity of identities) {
      if (outcomes.has(identity)) continue;
      const events = await h.log.read(identity);
      if (events.length !== seen.get(identity)) lastProgress = Date.now();
      seen.set(identity, events.length);
      const outcome = outcomeOf(identity, events);
      if (outcome) outcomes.set(identity, outcome);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const startsMs: number[] = [];
  let lastRunningAt = NaN;
  for (const identity of identities) {
    const outcome = outcomes.get(identity);
    if (outcome?.kind === 'running') {
      startsMs.push(outcome.startMs);
      if (!(outcome.runningAt <= lastRunningAt)) lastRunningAt = outcome.runningAt;
    } else {
      const last = (await h.log.read(identity)).at(-1)?.type ?? 'nothing';
      failures.push(`${identity}: ${outcome ? `ended ${outcome.state}` : `not running (stuck after ${last})`}`);
    }
  }

  // A bottle that never ran keeps its CLI waiting: that CLI is ended here, its failure already counted.
  if (failures.length > 0) for (const c of clis) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  const exits = await Promise.all(clis.map((c) => c.exit));
  exits.forEach((r, i) => {
    const why = r.stderr.trim().split('\n').at(-1) ?? '';
    if (r.code !== 0 && (printed[i] === '' || failures.length === 0)) failures.push(`start exited ${r.code}: ${why}`);
  });

  // Memory once every bottle runs and the starts' garbage had a moment to go.
  await new Promise((r) => setTimeout(r, 3_000));
  sampleWorker();
  clearInterval(sampler);
  const workerRunning = (pid && residentBytes(pid)) || NaN;
  const gateways = (await Promise.all(identities.map((id) => gatewayMemory(h, id)))).filter((g) => g !== undefined);

  // A stuck round's stop commands would queue behind what is stuck: its containers are removed directly.
  const stopped = failures.length === 0;
  if (stopped) {
    const stops = await Promise.all(identities.map((id) => h.cli(['stop', id], { timeoutMs: 600_000 })));
    stops.forEach((s, i) => s.code !== 0 && failures.push(`stop ${identities[i]} exited ${s.code}`));
    await Promise.all(identities.map((id) => h.waitForEvent(id, 'bottle.preserved', 600_000).catch(() => undefined)));
  }
  for (const identity of identities) {
    const left = await removeWhatIsLeft(h.docker, identity);
    if (stopped && left > 0) failures.push(`${identity}: resources left after stop`);
  }

  const allRunningMs = lastRunningAt - spawnedAt;
  return { n, failures, allRunningMs, startsMs, gateways, workerIdle, workerRunning, workerPeak };
}

function roundRows(round: Round, singleStartMs: number): Row[] {
  const row = (metric: string, value: number, unit: string, more: Partial<Row> = {}): Row => ({
    metric: `N=${round.n}: ${metric}`,
    value,
    unit,
    ...more,
  });
  const inMb = (pick: (g: GatewayMemory) => number) => round.gateways.map((g) => pick(g) / MB);
  const rss = inMb((g) => g.rss);
  const single = { baseline: singleStartMs };
  const rssTarget = { target: `<= ${GATEWAY_RSS_TARGET_MB} MB` };
  const ran = round.startsMs.length;
  const workerGrowth = (bytes: number) => (bytes - round.workerIdle) / MB / round.n;
  for (const failure of round.failures.slice(0, 5)) console.error(`  N=${round.n} failure: ${failure}`);
  return [
    row('failures', round.failures.length, 'bottles', { target: '0' }),
    row(`first spawn -> all running${ran < round.n ? ` (the ${ran} that ran)` : ''}`, round.allRunningMs, 'ms', single),
    row('  same, divided by N', round.allRunningMs / round.n, 'ms', single),
    row('per-bottle start p50 (start_requested -> running)', median(round.startsMs), 'ms', single),
    row('per-bottle start p95', percentile(round.startsMs, 95), 'ms', single),
    row(`gateway RSS (median of ${rss.length})`, median(rss), 'MB', rssTarget),
    row('gateway RSS (max)', Math.max(...rss), 'MB', rssTarget),
    row('  of which anonymous, not shared (median)', median(inMb((g) => g.anon)), 'MB'),
    row('gateway PSS, shared Node binary split (median)', median(inMb((g) => g.pss)), 'MB'),
    row('gateway container memory, docker stats (median)', median(inMb((g) => g.cgroup)), 'MB'),
    row('gateway container memory, docker stats (max)', Math.max(...inMb((g) => g.cgroup)), 'MB'),
    row('worker RSS, all running (baseline: before the round)', round.workerRunning / MB, 'MB', {
      baseline: round.workerIdle / MB,
    }),
    row('worker RSS growth per bottle, all running', workerGrowth(round.workerRunning), 'MB'),
    row('worker RSS growth per bottle, peak while starting', workerGrowth(round.workerPeak), 'MB'),
  ];
}

/** BENCH_SCALE_SIZES="10,20,40" (the default) picks the rounds. */
function sizesFromEnv(): number[] {
  const sizes = (process.env.BENCH_SCALE_SIZES ?? '10,20,40').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error('BENCH_SCALE_SIZES: positive integers, comma-separated');
  }
  return sizes;
}

export async function benchScale(sizes = sizesFromEnv(), singles = 3): Promise<Row[]> {
  const h = await startHarness();
  try {
    const manifest = h.writeManifest({
      bottles: [{ name: 'scale', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
      agents: [{ name: AGENT, bottle: 'scale', command: SLEEPER }],
    });
    const concurrency = process.env.BENCH_SCALE_WORKER_CONCURRENCY;
    if (concurrency) ownWorker = await startOwnWorker(h, concurrency);
    // The first round finds or builds the images and starts the worker; it is not counted.
    await runRound(h, manifest, 1);
    const single: number[] = [];
    for (let i = 0; i < singles; i++) single.push(...(await runRound(h, manifest, 1)).startsMs);
    const singleStartMs = median(single);
    const rows: Row[] = [
      { metric: `worker concurrency`, value: Number(concurrency ?? DEFAULT_WORKER_CONCURRENCY), unit: 'jobs' },
      { metric: 'one bottle alone: start (median)', value: singleStartMs, unit: 'ms' },
    ];
    for (const n of sizes) {
      const round = await runRound(h, manifest, n);
      rows.push(...roundRows(round, singleStartMs));
    }
    return rows;
  } finally {
    if (ownWorker) await stopWorker(ownWorker);
    await h.cleanup();
  }
}
