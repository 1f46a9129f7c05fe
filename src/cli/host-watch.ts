import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTerminal } from '../machines/index.js';
import type { RedisTarget } from '../shared/redis-target.js';
import { currentState, type BottleLog } from '../worker/bottle-log.js';
import { liveWorkers } from '../worker/heartbeat.js';
import { reviveLocalWorker } from './embedded.js';

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
}

/**
 * While a command waits on a bottle, keeps checking that a live worker
 * serves the bottle's host (its plan's; before the plan is in the log, any
 * worker, which decides the command). The local worker this installation
 * started is restarted as soon as its process is gone, without waiting for
 * its heartbeat to expire; for another host, which host has no live worker
 * is said once, and again when that changes. Runs until `signal` aborts.
 */
export async function watchBottleHost(opts: HostWatchOptions, signal: AbortSignal): Promise<void> {
  let said: string | undefined;
  // The host is fixed by the plan; once it is in the log it is not read again.
  const known: { host?: string } = {};
  const note = (line: string | undefined) => {
    if (line !== undefined && line !== said) opts.say(line);
    said = line;
  };
  while (!signal.aborted) {
    // Redis restarting, or a worker starting, is checked again at the next turn.
    const waiting = await unservedHost(opts, known).catch(() => undefined);
    if (signal.aborted) return;
    if (waiting === undefined) {
      if (said !== undefined) note(`a live worker serves ${opts.identity}'s host again`);
      note(undefined);
    } else {
      const who = waiting === ANY_HOST ? 'no live worker takes commands' : `no live worker serves host ${waiting}`;
      const next = opts.detach ? 'not waiting (--detach)' : 'waiting; it carries on when one does';
      note(`${opts.identity}: ${who}; ${next}`);
      if (opts.detach) return opts.giveUp();
    }
    // Node's timer removes its abort listener when it fires: none pile up, turn after turn.
    await sleep(CHECK_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
  }
}

const ANY_HOST = Symbol('any host');

/** The host the bottle waits for, when no live worker serves it (after reviving the local worker if it died). */
async function unservedHost(
  opts: HostWatchOptions,
  known: { host?: string },
): Promise<string | typeof ANY_HOST | undefined> {
  if (known.host === undefined) {
    const { state } = await currentState(opts.log, opts.identity);
    if (isTerminal(state)) return undefined;
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
