import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { tableLines } from '../table.js';
import { hostKeyId } from '../../shared/sealed-secrets.js';
import { HOST_ID_PATTERN, liveWorkers, type WorkerBeat } from '../../engine/workers.js';
import { readHostPublicKey } from '../../engine/host-keys.js';
import { RuntimeFailure, UsageError } from '../../shared/errors.js';
import { knownHostsPath, pinHostKey, readKnownHosts, trustCommand } from '../known-hosts.js';
import type { CliIO } from '../../shared/io.js';
import { openSession } from '../session.js';
import { formatOption, type CliContext } from '../program.js';

export interface ListedHost {
  id: string;
  engine: string;
  builds: string[];
  workers: number;
  bottles: number;
  capacity: number;
  /** Ids of the public keys its workers seal to; more than one means they disagree (different homes). */
  keys: string[];
  /** Id of the key the CLI seals to (published in Redis), or null when none is published. */
  published: string | null;
  /** Id of the key pinned in this CLI's known-hosts, or null before the first sealed start. */
  pinned: string | null;
}

/** Live workers grouped by the host they serve; read from their heartbeats in Redis, nothing else. */
function hostsOf(beats: readonly WorkerBeat[]): ListedHost[] {
  const byId = new Map<string, ListedHost>();
  for (const beat of beats) {
    const host = byId.get(beat.hostId) ?? {
      id: beat.hostId,
      engine: beat.engineId,
      builds: [],
      workers: 0,
      bottles: 0,
      capacity: 0,
      keys: [],
      published: null,
      pinned: null,
    };
    if (!host.builds.includes(beat.build)) host.builds.push(beat.build);
    const key = beat.publicKey ? hostKeyId(beat.publicKey) : '';
    if (key && !host.keys.includes(key)) host.keys.push(key);
    host.engine ||= beat.engineId;
    host.workers += 1;
    host.bottles += beat.bottles;
    host.capacity += beat.capacity;
    byId.set(beat.hostId, host);
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** Whether the key sealed to is the pinned one, for the PINNED column. */
function pinText(h: ListedHost): string {
  if (!h.published) return h.pinned ? `${h.pinned}, none published` : '-';
  if (!h.pinned) return 'no';
  return h.pinned === h.published ? 'yes' : `CHANGED from ${h.pinned}`;
}

async function withKeys(redis: Redis, hosts: ListedHost[]): Promise<ListedHost[]> {
  const pins = readKnownHosts(knownHostsPath());
  for (const host of hosts) {
    const published = await readHostPublicKey(redis, host.id);
    host.published = published ? hostKeyId(published) : null;
    host.pinned = pins.get(host.id)?.keyId ?? null;
  }
  return hosts;
}

export interface HostsOptions {
  format: 'text' | 'json';
  trust?: string;
  key?: string;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('hosts')
    .description('live worker hosts: id, engine, build, bottles, capacity, host key and whether it is pinned')
    .addOption(formatOption())
    .option('--trust <host>', "pin the key HOST publishes now in known-hosts (needs --key, the key's id)")
    .option('--key <id>', 'with --trust: the id of the key to accept, as the refusal or the worker showed it')
    .action((flags: HostsOptions) => cli.run(() => (flags.trust ? runTrust(flags, cli.io) : runHosts(flags, cli.io))));
}

/**
 * `bottle hosts --trust HOST --key ID`: pins the key HOST publishes now, but only if its id is ID.
 * The id is asked for so that what is pinned is the key the operator looked at: a key swapped in
 * Redis between the look and the trust has another id and is refused.
 */
export async function runTrust(opts: HostsOptions, io: CliIO): Promise<number> {
  const host = opts.trust ?? '';
  if (opts.format === 'json') throw new UsageError('--trust prints text only; leave out --format json');
  if (!HOST_ID_PATTERN.test(host)) throw new UsageError(`--trust ${JSON.stringify(host)}: not a host id`);
  const session = await openSession({ needWorker: false });
  let published: string | undefined;
  try {
    published = await readHostPublicKey(session.redis, host);
  } finally {
    await session.close();
  }
  if (!published) throw new RuntimeFailure(`host ${host} has published no key (no worker of it has started)`);
  const path = knownHostsPath();
  const pinned = readKnownHosts(path).get(host)?.keyId ?? 'none';
  const now = hostKeyId(published);
  io.stdout(`host ${host}: pinned key ${pinned}, published key ${now}`);
  if (!opts.key) {
    throw new UsageError(
      `--trust needs --key with the id of the key to accept; compare ${now} with the key id the worker of ` +
        `${host} logs at start, then \`${trustCommand(host, now)}\``,
    );
  }
  if (opts.key !== now) {
    throw new RuntimeFailure(
      `host ${host} publishes key ${now}, not ${opts.key}: nothing was pinned; check the host before trusting`,
    );
  }
  if (pinned === now) {
    io.stdout(`host ${host}: key ${now} is already pinned`);
    return 0;
  }
  pinHostKey(path, host, published);
  io.stdout(`host ${host}: key ${now} pinned in ${path}`);
  return 0;
}

/** `bottle hosts`: the Docker hosts a live worker serves. */
export async function runHosts(opts: HostsOptions, io: CliIO): Promise<number> {
  if (opts.key) throw new UsageError('--key goes with --trust HOST');
  const session = await openSession({ needWorker: false });
  let hosts: ListedHost[];
  try {
    hosts = await withKeys(session.redis, hostsOf(await liveWorkers(session.redis)));
  } finally {
    await session.close();
  }
  if (opts.format === 'json') {
    io.stdout(terminalSafeJson(hosts));
    return 0;
  }
  if (hosts.length === 0) {
    io.stdout('no live worker host (`bottle start` starts a local one; or run `bottle worker` on a Docker host)');
    return 0;
  }
  const rows = hosts.map((h) => [
    h.id,
    h.engine || '?',
    h.builds.map((b) => b || 'unknown').join(','),
    String(h.workers),
    `${h.bottles}/${h.capacity}`,
    h.keys.join(',') || '?',
    pinText(h),
  ]);
  const header = ['HOST', 'ENGINE', 'BUILD', 'WORKERS', 'BOTTLES', 'KEY', 'PINNED'];
  for (const line of tableLines(header, rows)) io.stdout(line);
  return 0;
}
