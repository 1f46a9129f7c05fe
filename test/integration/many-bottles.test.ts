import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../src/events/schema.js';
import { bottleStatus, foldHistory, stateName } from '../../src/machines/index.js';
import { LABELS } from '../../src/shared/names.js';
import {
  BOTTLE_SUBNET_PREFIX,
  formatCidr,
  overlaps,
  parseCidr,
  SUBNET_POOL_ENV,
  type Ipv4Cidr,
} from '../../src/shared/subnet-pool.js';
import { PIN_DEFAULT_HOSTS, startHarness, type BottleHarness, type StartingCli } from '../support/cli-harness.js';

/**
 * Room for many bottles on one host, with the daemon's default configuration:
 * N bottles started at once hold twice as many networks, more than Docker's
 * default address pools give out, because bottle networks take their subnets
 * from our own pool. All of them reach `running` by their own event logs, no
 * two share a subnet, and stopping them leaves no container or network behind.
 */

const N = 40;
/** Room to spare beyond the bottles' networks, so the spread of candidates still finds free ones quickly. */
const POOL_PREFIX = 21;

let h: BottleHarness;
let manifest: string;
let cwd: string;
let pool: Ipv4Cidr;
const identities = new Set<string>();

/**
 * A pool of this run's own inside 10.253.0.0/16 (the network-pool test draws
 * from 10.252.0.0/16), clear of every subnet the daemon already has.
 */
async function privatePool(docker: Docker): Promise<Ipv4Cidr> {
  const taken = (await docker.listNetworks())
    .flatMap((n) => n.IPAM?.Config ?? [])
    .map((c) => c.Subnet)
    .filter((s): s is string => !!s && !s.includes(':'))
    .map(parseCidr);
  const size = 2 ** (32 - POOL_PREFIX);
  const outer = parseCidr('10.253.0.0/16');
  for (;;) {
    const candidate = { base: outer.base + randomInt(2 ** (POOL_PREFIX - outer.prefix)) * size, prefix: POOL_PREFIX };
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
}

function labelledWith(label: string): string {
  return JSON.stringify({ label: [label] });
}

/** Containers and networks still labelled with one of this run's identities. */
async function leftovers(): Promise<string[]> {
  const label = labelledWith(LABELS.identity);
  const containers = (await h.docker.listContainers({ all: true, filters: label }))
    .filter((c) => identities.has(c.Labels[LABELS.identity]))
    .map((c) => `container ${c.Names.join(',')}`);
  const networks = (await h.docker.listNetworks({ filters: label }))
    .filter((n) => identities.has(n.Labels?.[LABELS.identity] ?? ''))
    .map((n) => `network ${n.Name}`);
  return [...containers, ...networks];
}

/** A bottle whose log has not grown for this long is stuck, not slow: the test says which and where. */
const STALL_MS = 120_000;

/**
 * Waits until every bottle's log folds to `running`, failing at once on a
 * bottle that ended otherwise, and when no unfinished bottle's log has grown
 * for STALL_MS, naming each unfinished bottle and what it is waiting on.
 */
async function waitAllRunning(mine: string[]): Promise<Map<string, LifecycleEvent[]>> {
  const running = new Map<string, LifecycleEvent[]>();
  const lengths = new Map<string, number>();
  let progressAt = Date.now();
  for (;;) {
    const stuck: string[] = [];
    for (const identity of mine) {
      if (running.has(identity)) continue;
      const events = await h.log.read(identity);
      if (events.length !== lengths.get(identity)) progressAt = Date.now();
      lengths.set(identity, events.length);
      const state = foldHistory(identity, events).state;
      const name = stateName(state);
      if (name === 'running') running.set(identity, events);
      else if (name === 'failed' || name === 'preserved' || name === 'cleaned') {
        throw new Error(`${identity} ended ${name} instead of running: ${events.map((e) => e.type).join(', ')}`);
      } else stuck.push(`${identity}: ${bottleStatus(state)} after ${events.at(-1)?.type ?? 'nothing'}`);
    }
    if (stuck.length === 0) return running;
    if (Date.now() - progressAt > STALL_MS) {
      throw new Error(`${stuck.length} of ${mine.length} bottles stopped progressing:\n${stuck.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The start CLIs this test spawned, so a failed run can end the ones still waiting. */
const clis: ChildProcess[] = [];

function startDetached(): StartingCli {
  const started = h.startDetached(['--manifest', manifest, 'start', 'many', '--detach', '--cwd', cwd]);
  clis.push(started.child);
  return started;
}

beforeAll(async () => {
  pool = await privatePool(new Docker());
  h = await startHarness({ env: { [SUBNET_POOL_ENV]: formatCidr(pool) } });
  // Stoppable by SIGTERM: PID 1 ignores signals it does not trap.
  manifest = h.writeManifest({
    bottles: [{ name: 'fleet', egress: { allow: [] }, extra_hosts: PIN_DEFAULT_HOSTS }],
    agents: [{ name: 'many', bottle: 'fleet', command: ['bash', '-c', 'trap "exit 143" TERM; sleep infinity & wait'] }],
  });
  cwd = mkdtempSync(join(tmpdir(), 'cb-many-cwd-'));
});

afterAll(async () => {
  for (const child of clis) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  // The harness tears down whatever its store labelled, including starts that failed before printing an identity.
  await h?.cleanup();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
}, 600_000);

describe('many bottles on one host', () => {
  it(`${N} bottles started at once all run on subnets of their own, then stop leaving nothing behind`, async () => {
    const starts = Array.from({ length: N }, () => startDetached());
    const printed = await Promise.all(starts.map((s) => s.identity));
    for (const identity of printed) if (identity) identities.add(identity);
    const mine = printed.filter((identity) => identity !== '');
    if (mine.length < N) {
      const failed = await Promise.all(starts.filter((_, i) => printed[i] === '').map((s) => s.exit));
      throw new Error(`${N - mine.length} starts printed no identity; first: ${failed[0]?.stderr}`);
    }
    expect(new Set(mine).size).toBe(N);

    const running = await waitAllRunning(mine);
    for (const r of await Promise.all(starts.map((s) => s.exit))) {
      expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
    }
    const histories = mine.map((identity) => running.get(identity)!);

    // No two bottles share a subnet, and every subnet is a bottle-sized piece of this run's pool.
    const subnets = histories.flatMap((events) => {
      const created = events.find((e) => e.type === 'network.created');
      const data = created?.data as { subnets?: { internal: string; egress: string } } | undefined;
      return data?.subnets ? [data.subnets.internal, data.subnets.egress] : [];
    });
    expect(subnets).toHaveLength(2 * N);
    expect(new Set(subnets).size).toBe(2 * N);
    for (const subnet of subnets) {
      expect(parseCidr(subnet).prefix).toBe(BOTTLE_SUBNET_PREFIX);
      expect(overlaps(parseCidr(subnet), pool), `${subnet} outside ${formatCidr(pool)}`).toBe(true);
    }
    // What the daemon holds, not only what the logs say.
    const label = labelledWith(LABELS.identity);
    const networks = (await h.docker.listNetworks({ filters: label })).filter((n) =>
      mine.includes(n.Labels?.[LABELS.identity] ?? ''),
    );
    expect(networks).toHaveLength(2 * N);
    const agents = (await h.docker.listContainers({ filters: label })).filter(
      (c) => mine.includes(c.Labels[LABELS.identity]) && c.Labels[LABELS.role] === 'agent',
    );
    expect(agents).toHaveLength(N);
    for (const c of agents) expect(c.State).toBe('running');

    const stops = await Promise.all(mine.map((id) => h.cli(['stop', id], { timeoutMs: 600_000 })));
    for (const s of stops) expect(s.code, s.stderr).toBe(0);
    await Promise.all(mine.map((id) => h.waitForEvent(id, 'bottle.preserved', 600_000)));
    expect(await leftovers()).toEqual([]);
  }, 1_800_000);
});
