import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { DelayedError, UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  PermanentEffectError,
  type EffectContext,
  type EffectHandlers,
  type HostDaemon,
  type HostTaskHandlers,
} from '../effects/types.js';
import type { NewEvent } from '../events/schema.js';
import { storeId } from '../event-store/store-id.js';
import { setStoreLabel } from '../shared/names.js';
import {
  InvalidEffectRequestError,
  isTerminal,
  parseEffectRequest,
  stateName,
  type EffectRequest,
} from '../machines/index.js';
import { BottlePlanSchema } from '../plan/schema.js';
import { openBottleLog } from '../engine/bottle-log.js';
import { BottleEngine } from './engine.js';
import { startHeartbeat } from './heartbeat.js';
import { loadOrCreateHostKey } from './host-key.js';
import { discardSealedSecrets, publishHostKey, readSealedSecrets, storeSealedSecrets } from '../engine/host-keys.js';
import {
  CleanupReportSchema,
  HOST_TASK_JOB,
  HostTaskSchema,
  type CleanupReport,
  type HostTask,
} from '../engine/host-tasks.js';
import {
  CommandJobSchema,
  EFFECT_ATTEMPTS,
  QUEUE_NAME,
  QUEUE_PREFIX,
  commandJobId,
  effectJobId,
  openQueue,
  hostQueueNames,
  isLifelong,
} from '../engine/queues.js';
import { progressChannel } from '../engine/progress.js';
import { DaemonProbe } from './daemon-probe.js';
import {
  clearDaemonWait,
  daemonAwayAfter,
  delayForDaemon,
  markDaemonWait,
  promoteDelayed,
  reconcileHost,
} from './reconcile-host.js';
import { trace } from '../shared/trace.js';
import { openSealedSecrets, type HostKeyPair } from '../shared/sealed-secrets.js';
import { uploadedSources } from '../blobs/materialize.js';

export interface WorkerOptions {
  /** Opens a fresh connection (BullMQ's worker blocks on its own). */
  connect: () => Redis;
  handlers: EffectHandlers;
  concurrency?: number;
  log?: (line: string) => void;
  /** The runtimes its Docker daemon has registered, published in the heartbeat for the CLI's plans. */
  runtimes?: string[];
  /** The Docker host this worker serves: its id and the engine's, published in the heartbeat. */
  host?: { id: string; engineId: string };
  /** How many lifelong effects (one per running bottle) this worker serves at once. */
  lifelongConcurrency?: number;
  /** Host-wide tasks (cleanup); a worker without them refuses such jobs. */
  hostTasks?: HostTaskHandlers;
  /** Its Docker daemon: effects wait while it is away, and the host is reconciled at start and on its return. */
  daemon?: HostDaemon;
  /** The host's key pair for sealed secrets; by default read from (or created in) the worker's home. */
  hostKeys?: HostKeyPair;
}

export interface RunningWorker {
  worker: Worker;
  close(): Promise<void>;
}

/**
 * Lock settings: a SIGKILLed worker's job is re-run by another worker (or the
 * restarted one) after the lock lapses; short values make that fast, while the
 * lock is renewed every lockDuration/2 for long effects such as watch_agent.
 */
const LOCK_DURATION_MS = 10_000;
const STALLED_INTERVAL_MS = 5_000;
const MAX_STALLED_COUNT = 20;
/** Bounds the bottles one worker watches, far above what one Docker host runs. */
const LIFELONG_CONCURRENCY = 1000;

export async function runWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const say = opts.log ?? (() => undefined);
  const redis = opts.connect();
  const queueConn = opts.connect();
  const log = openBottleLog(redis);
  const store = await storeId(redis);
  setStoreLabel(store);
  const hostId = opts.host?.id ?? hostname();
  const hostQueues = hostQueueNames(hostId);
  const hostKeys = opts.hostKeys ?? loadOrCreateHostKey(hostId);
  await publishHostKey(redis, hostId, hostKeys.publicKey);
  const queues = new Map<string, Queue>();
  const queueByName = (name: string): Queue => {
    let queue = queues.get(name);
    if (!queue) {
      queue = openQueue(queueConn, name);
      queues.set(name, queue);
    }
    return queue;
  };
  const engine = new BottleEngine(log, queueByName);
  const shutdown = new AbortController();
  const daemon = opts.daemon;
  const probe = daemon && new DaemonProbe(() => daemon.reachable());
  // Every running effect listens for shutdown; concurrency bounds them, not 10.
  setMaxListeners(0, shutdown.signal);

  // Lifelong effects in flight: the bottles this worker is watching.
  let watching = 0;
  const processJob = async (job: Job, token?: string): Promise<unknown> => {
    if (job.name === 'command') {
      const cmd = CommandJobSchema.parse(job.data);
      // Stored before the append, so the launch it starts finds them; a retried job stores the same blob.
      if (cmd.sealed_secrets) await storeSealedSecrets(redis, cmd.identity, cmd.sealed_secrets);
      const appended = await engine.apply(
        cmd.identity,
        [cmd.event as NewEvent],
        commandJobId(cmd.identity, cmd.command_id),
      );
      return { appended: appended.map((e) => e.seq) };
    }
    if (job.name === 'effect') {
      let req: EffectRequest;
      try {
        req = parseEffectRequest(job.data);
      } catch (err) {
        // A job no handler can run (from another version, or corrupted) fails once, visibly.
        if (err instanceof InvalidEffectRequestError) throw new UnrecoverableError(err.message);
        throw err;
      }
      if (!isLifelong(req.kind)) return runEffect(job, req, token);
      watching += 1;
      try {
        return await runEffect(job, req, token);
      } finally {
        watching -= 1;
      }
    }
    if (job.name === HOST_TASK_JOB) return runHostTask(HostTaskSchema.parse(job.data));
    throw new PermanentEffectError(`unknown job ${job.name}`);
  };

  const isLive = async (identity: string) => {
    const { state, lastSeq } = await engine.currentState(identity);
    // A bottle this store has no events for is not live here.
    return lastSeq > 0 && !isTerminal(state) && stateName(state) !== 'preserved';
  };

  const imagesInUse = async () => {
    const tags = new Set<string>();
    for (const entry of await log.listBottles()) {
      const { state } = await engine.currentState(entry.identity);
      if (stateName(state) === 'cleaned') continue;
      const plan = BottlePlanSchema.safeParse(state.context.plan);
      if (plan.success) [plan.data.image.tag, plan.data.gateway_image.tag].forEach((tag) => tags.add(tag));
    }
    return [...tags];
  };

  const runHostTask = async (task: HostTask): Promise<CleanupReport> => {
    if (!opts.hostTasks) throw new UnrecoverableError(`this worker runs no host tasks (asked for ${task.task})`);
    say(`host task ${task.task}${task.dry_run ? ' (dry run)' : ''}`);
    return CleanupReportSchema.parse(await opts.hostTasks.cleanup(task, { id: store, isLive, imagesInUse }));
  };

  const runEffect = async (job: Job, req: EffectRequest, token?: string): Promise<unknown> => {
    const cause = effectJobId(req);
    const { state } = await engine.currentState(req.identity);
    const plan = BottlePlanSchema.parse(state.context.plan);
    const effectAbort = new AbortController();
    const uploads = uploadedSources(redis, plan);
    const onShutdown = () => effectAbort.abort();
    shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    say(`effect ${req.kind} ${req.identity} (caused by #${req.causedBySeq}, attempt ${job.attemptsMade + 1})`);
    const begun = performance.now();
    try {
      const events = await runHandler(opts.handlers, req, {
        identity: req.identity,
        plan,
        signal: effectAbort.signal,
        // The machine tracks the highest gateway decision recorded since the last gateway start.
        lastEgressDecision: state.context.lastEgressDecision,
        loggedEvent: async (seq) => (await log.read(req.identity, seq, seq))[0],
        observe: async (observed) => {
          await engine.apply(req.identity, observed);
        },
        progress: (line) => {
          void redis.publish(progressChannel(req.identity), line).catch(() => undefined);
        },
        secrets: {
          open: async () => {
            const blob = await readSealedSecrets(redis, req.identity);
            return blob && openSealedSecrets(blob, { identity: req.identity, host: hostId, keys: hostKeys });
          },
          discard: () => discardSealedSecrets(redis, req.identity),
        },
        uploads,
        daemon: probe,
      });
      if (effectAbort.signal.aborted && shutdown.signal.aborted) throw new ShutdownInterrupt();
      await engine.apply(req.identity, events, cause);
      trace(`effect ${req.kind} ${req.identity} done in ${(performance.now() - begun).toFixed(0)} ms`);
      return { events: events.map((e) => e.type) };
    } catch (err) {
      if (err instanceof ShutdownInterrupt || (shutdown.signal.aborted && !(err instanceof PermanentEffectError))) {
        // Hand the effect back to the queue untouched; another worker picks it up.
        await job.moveToDelayed(Date.now() + 250, token);
        throw new DelayedError();
      }
      const message = err instanceof Error ? err.message : String(err);
      const away = !(err instanceof PermanentEffectError) && (await daemonAwayAfter(err, opts.daemon));
      const daemonWait = away ? await markDaemonWait(job) : undefined;
      if (daemonWait && !daemonWait.exhausted) {
        // Visible per try, but no try is spent: the job is delayed until the daemon answers, within a bound.
        if (probe?.away()) say(DAEMON_AWAY);
        const attempt = job.attemptsMade + daemonWait.waits;
        say(`effect ${req.kind} ${req.identity} waits for the Docker daemon: ${message}`);
        await engine.apply(
          req.identity,
          [{ type: 'effect.failed', data: { effect: req.kind, error: message, attempt, permanent: false } }],
          `${cause}.daemon.${daemonWait.waits}`,
        );
        await delayForDaemon(job, daemonWait.waits, token);
        throw new DelayedError();
      }
      if (!away) await clearDaemonWait(job);
      const permanent =
        err instanceof PermanentEffectError ||
        daemonWait?.exhausted === true ||
        job.attemptsMade + 1 >= (job.opts.attempts ?? EFFECT_ATTEMPTS);
      say(`effect ${req.kind} ${req.identity} failed${permanent ? ' permanently' : ''}: ${message}`);
      await engine.apply(
        req.identity,
        [
          {
            type: 'effect.failed',
            data: { effect: req.kind, error: message, attempt: job.attemptsMade + 1, permanent },
          },
        ],
        `${cause}.failed.${job.attemptsMade + 1}`,
      );
      if (permanent) return { failed: message };
      throw err;
    } finally {
      shutdown.signal.removeEventListener('abort', onShutdown);
      await uploads.dispose();
    }
  };

  const storeView = { id: store, isLive, imagesInUse };
  const reconcile = () => reconcileHost({ log, engine, hostId, store: storeView, daemon: opts.daemon, say });
  // One reconcile at a time: the one at start, then one per return of the daemon.
  let reconciling: Promise<void> = Promise.resolve();
  const reconcileInTurn = (work: () => Promise<void>): Promise<void> => {
    const turn = reconciling.then(work);
    reconciling = turn.catch(() => undefined);
    return turn;
  };
  // Whether or not this worker watches a bottle, it notices its daemon leave and return.
  probe?.subscribe((answering) => {
    if (!answering) return say(DAEMON_AWAY);
    say('the Docker daemon answers again: reconciling this host');
    reconcileInTurn(async () => {
      await reconcile();
      await promoteDelayed([queueByName(hostQueues.effects), queueByName(hostQueues.lifelong)]);
    }).catch((err: unknown) => say(`reconcile failed: ${(err as Error).message}`));
  });
  probe?.start();

  const workerFor = (name: string, concurrency: number) => {
    const w = new Worker(name, processJob, {
      connection: opts.connect(),
      prefix: QUEUE_PREFIX,
      concurrency,
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      maxStalledCount: MAX_STALLED_COUNT,
      autorun: true,
    });
    w.on('error', (err) => say(`worker error (${name}): ${err.message}`));
    return w;
  };
  // Commands and host tasks come from any CLI; effects only for bottles pinned to this host.
  const worker = workerFor(QUEUE_NAME, opts.concurrency ?? 32);
  const effectsWorker = workerFor(hostQueues.effects, opts.concurrency ?? 32);
  const lifelongConcurrency = opts.lifelongConcurrency ?? LIFELONG_CONCURRENCY;
  const lifelongWorker = workerFor(hostQueues.lifelong, lifelongConcurrency);
  await Promise.all([worker.waitUntilReady(), effectsWorker.waitUntilReady(), lifelongWorker.waitUntilReady()]);

  const stopBeat = startHeartbeat(redis, {
    hostId,
    engineId: opts.host?.engineId ?? '',
    runtimes: opts.runtimes ?? [],
    capacity: lifelongConcurrency,
    bottles: () => watching,
    publicKey: hostKeys.publicKey,
  });
  // A worker that died between an append and its enqueue, or mid-effect, left effects unfinished.
  await reconcileInTurn(reconcile);
  say(`worker ready (concurrency ${opts.concurrency ?? 32})`);

  return {
    worker,
    async close() {
      shutdown.abort();
      await probe?.stop();
      await reconciling;
      // Stop taking jobs before the heartbeat goes: a CLI waiting for this worker to
      // leave must not see it gone while it could still pick one up.
      await Promise.all([worker.close(), effectsWorker.close(), lifelongWorker.close()]);
      await stopBeat();
      await Promise.all([...queues.values()].map((q) => q.close()));
      redis.disconnect();
      queueConn.disconnect();
    },
  };
}

class ShutdownInterrupt extends Error {}

const DAEMON_AWAY = 'the Docker daemon does not answer; effects wait for it';

/** The handler of the request's kind; the table's type pairs each kind with its own request and outcomes. */
function runHandler(handlers: EffectHandlers, req: EffectRequest, ctx: EffectContext): Promise<NewEvent[]> {
  const handler = handlers[req.kind] as (req: EffectRequest, ctx: EffectContext) => Promise<NewEvent[]>;
  return handler(req, ctx);
}
