import type { Command } from 'commander';
import { terminalSafeJson } from '../../shared/visible-text.js';
import { tableLines } from '../table.js';
import { hostKeyId } from '../../shared/sealed-secrets.js';
import { liveWorkers, type WorkerBeat } from '../../engine/workers.js';
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

export interface HostsOptions {
  format: 'text' | 'json';
}

export function register(program: Command, cli: CliContext): void {
  program
    .command('hosts')
    .description('live worker hosts: id, engine, build, bottles, capacity')
    .addOption(formatOption())
    .action((flags: HostsOptions) => cli.run(() => runHosts(flags, cli.io)));
}

/** `bottle hosts`: the Docker hosts a live worker serves. */
export async function runHosts(opts: HostsOptions, io: CliIO): Promise<number> {
  const session = await openSession({ needWorker: false });
  let hosts: ListedHost[];
  try {
    hosts = hostsOf(await liveWorkers(session.redis));
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
  ]);
  const header = ['HOST', 'ENGINE', 'BUILD', 'WORKERS', 'BOTTLES', 'KEY'];
  for (const line of tableLines(header, rows)) io.stdout(line);
  return 0;
}
