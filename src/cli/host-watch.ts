import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTerminal, stateName, type BottleState } from '../machines/index.js';
import type { RedisTarget } from '../shared/redis-target.js';
import { visibleText } from '../shared/visible-text.js';
import { currentState, type BottleLog } from '../engine/bottle-log.js';
import { liveWorkers } from '../engine/workers.js';
import { reviveLocalWorker } from './local-worker.js';

/** How often a waiting command checks that a worker serves its bottle. */
const CHECK_INTERVAL_MS = 1000;

export interface HostWatchOptions {
  target: RedisTarget;
  redis: Redis;
  log: BottleLog;
  identity: string;
  say: (line: string) => void;
  /** Give up (call `giveUp`) when no live worker serves the bottle's host, instead of waiting. */
  detach: boolean;
  giveUp: () => void;
  /**
   * A follow (events, agent output, a terminal) shows what is in Redis or Docker with or without a worker:
   * it is told no worker serves the host while the bottle has work ahead of it, and never gives up.
   */
  following?: boolean;
}

/**
 * While a command waits on a bottle, keeps checking that a live worker
 * serves the bottle's host (its plan's; before the plan is in the log, any
 * worker, which decides the command). The local worker this installation
 * started is restarted as soon as its process is gone, without waiting for
 * its heartbeat to expire; for another host, which host has no live worker
 * is said once, and again when that changes. Runs until `signal` aborts.
 * A follow (`following`) is told the same, but only while its bottle has
 * work ahead of it, and never gives up.
 */
export async function watchBottleHost(opts: HostWatchOptions, signal: AbortSignal): Promise<void> {
  let said: string | undefined;
  // The host is fixed by the plan; once it is in the log a wait does not read it again.
  const known: { host?: string } = {};
  const note = (line: string | undefined) => {
    if (line !== undefined && line !== said) opts.say(line);
    said = line;
  };
  while (!signal.aborted) {
    // Redis restarting, or a worker starting, is checked again at the next turn.
    const waiting = await unservedHost(opts, known).catch(() => undefined);
    if (signal.aborted) return;
    if (waiting === undefined || waiting === NO_WORKER_NEEDED) {
      if (said !== undefined && waiting === undefined) note(`a live worker serves ${opts.identity}'s host again`);
      note(undefined);
    } else {
      note(`${opts.identity}: ${unservedNote(waiting === ANY_HOST ? undefined : waiting, opts)}`);
      if (opts.detach) return opts.giveUp();
    }
    // Node's timer removes its abort listener when it fires: none pile up, turn after turn.
    await sleep(CHECK_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
  }
}

const ANY_HOST = Symbol('any host');
/** A followed bottle that rests (ended, or preserved): it has no host to wait for. */
const NO_WORKER_NEEDED = Symbol('no worker needed');

/** Which host has no live worker, what the command does about it, and what starts one. */
export function unservedNote(waiting: string | undefined, how: Pick<HostWatchOptions, 'detach' | 'following'>): string {
  // A host id comes from the bottle's plan, in Redis: shown with its control characters spelled out.
  const host = waiting === undefined ? undefined : visibleText(waiting);
  const who = host === undefined ? 'no live worker takes commands' : `no live worker serves host ${host}`;
  const run = host === undefined ? '`bottle worker`' : `\`bottle worker --host ${host}\` on that host`;
  if (how.following) return `${who}; still following, but nothing moves the bottle on until one runs: ${run}`;
  if (how.detach) return `${who}; not waiting (--detach); start one with ${run}`;
  return `${who}; waiting; it carries on when one does: ${run}`;
}

/**
 * Runs `work` (a follow of the bottle's events, its agent's output or its terminal) while telling `say`
 * when no live worker serves the bottle's host, and when one does again; a dead local worker is revived.
 */
export async function whileWatchingHost<T>(
  engine: Pick<HostWatchOptions, 'target' | 'redis' | 'log'>,
  identity: string,
  say: (line: string) => void,
  work: () => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const watching = watchBottleHost(
    { ...engine, identity, say, detach: false, giveUp: () => undefined, following: true },
    stop.signal,
  );
  try {
    return await work();
  } finally {
    stop.abort();
    await watching;
  }
}

/** The host the bottle waits for, when no live worker serves it (after reviving the local worker if it died). */
async function unservedHost(
  opts: HostWatchOptions,
  known: { host?: string },
): Promise<string | typeof ANY_HOST | typeof NO_WORKER_NEEDED | undefined> {
  // A follow outlasts the bottle's changes of state, so it reads the state each turn (the live-state cache).
  if (opts.following || known.host === undefined) {
    const { state } = await currentState(opts.log, opts.identity);
    if (isTerminal(state) || (opts.following && restsWithoutWorker(state))) return NO_WORKER_NEEDED;
    known.host = state.context.plan?.host;
  }
  const host = known.host;
  if (
    (host === undefined || host === hostname()) &&
    (await reviveLocalWorker(opts.target, opts.redis, hostname(), opts.say))
  ) {
    return undefined;
  }
  const live = await liveWorkers(opts.redis);
  if (host === undefined) return live.length > 0 ? undefined : ANY_HOST;
  return live.some((w) => w.hostId === host) ? undefined : host;
}

/** A preserved bottle waits for a resume, a command that itself waits visibly for a worker. */
function restsWithoutWorker(state: BottleState): boolean {
  return stateName(state) === 'preserved';
}
