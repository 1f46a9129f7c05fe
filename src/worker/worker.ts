import { hostname } from 'node:os';
import { storeId } from '../event-store/store-id.js';
import { openBottleLog } from '../engine/bottle-log.js';
import { publishHostKey } from '../engine/host-keys.js';
import { hostQueueNames } from '../engine/queues.js';
import { setStoreLabel } from '../shared/names.js';
import { hostKeyId } from '../shared/sealed-secrets.js';
import { runCommand } from './command-runner.js';
import { DaemonProbe } from './daemon-probe.js';
import { effectContext } from './effect-context.js';
import { EffectFailurePolicy } from './effect-failure.js';
import { EffectRunner } from './effect-runner.js';
import { BottleEngine } from './engine.js';
import { startHeartbeat } from './heartbeat.js';
import { loadOrCreateHostKey } from './host-key.js';
import { hostTaskRunner } from './host-task-runner.js';
import { routeJobs } from './job-router.js';
import { startJobWorkers } from './job-workers.js';
import { QueuePool } from './queue-pool.js';
import { HostReconciler, reconcileHost } from './reconcile-host.js';
import { Shutdown } from './shutdown.js';
import { eventStoreView } from './store-view.js';
import type { RunningWorker, WorkerOptions } from './worker-options.js';

export type { RunningWorker, WorkerOptions } from './worker-options.js';

/** Bounds the bottles one worker watches, far above what one Docker host runs. */
const LIFELONG_CONCURRENCY = 1000;

/** Starts a worker: commands and host tasks from any CLI, effects of the bottles pinned to its host, until closed. */
export async function runWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const { daemon, concurrency = 32, lifelongConcurrency = LIFELONG_CONCURRENCY } = opts;
  const say = opts.log ?? (() => undefined);
  const redis = opts.connect();
  const queues = new QueuePool(opts.connect());
  const log = openBottleLog(redis);
  const engine = new BottleEngine(log, queues.byName);
  const store = eventStoreView(await storeId(redis), log, engine);
  setStoreLabel(store.id);
  const hostId = opts.host?.id ?? hostname();
  const hostKeys = opts.hostKeys ?? loadOrCreateHostKey(hostId, process.env, { warn: say });
  await publishHostKey(redis, hostId, hostKeys.publicKey);
  const shutdown = new Shutdown();
  const probe = daemon && new DaemonProbe(() => daemon.reachable());
  const apply = engine.apply.bind(engine);
  const effects = new EffectRunner({
    handlers: opts.handlers,
    engine,
    shutdown,
    say,
    context: (identity, state, signal) =>
      effectContext(
        {
          redis,
          log,
          observe: apply,
          hostId,
          hostKeys,
          daemon: probe,
          imagesInUse: (except) => store.imagesInUse(except),
        },
        identity,
        state,
        signal,
      ),
    failure: new EffectFailurePolicy({ apply, daemon, probe, shutdown, say }),
  });
  const reconciler = new HostReconciler(() => reconcileHost({ log, engine, hostId, store, daemon, say }), say);
  const { effects: effectQueue, lifelong: lifelongQueue } = hostQueueNames(hostId);
  if (probe) reconciler.follow(probe, () => [queues.byName(effectQueue), queues.byName(lifelongQueue)]);
  probe?.start();

  const workers = await startJobWorkers({
    connect: opts.connect,
    hostId,
    concurrency,
    lifelongConcurrency,
    say,
    process: routeJobs({
      command: (cmd) => runCommand({ redis, engine }, cmd),
      effect: (job, req, token) => effects.run(job, req, token),
      hostTask: hostTaskRunner(opts.hostTasks, store, say),
    }),
  });
  const stopBeat = startHeartbeat(redis, {
    hostId,
    engineId: opts.host?.engineId ?? '',
    runtimes: opts.runtimes ?? [],
    capacity: lifelongConcurrency,
    bottles: () => effects.watching,
    publicKey: hostKeys.publicKey,
  });
  // A worker that died between an append and its enqueue, or mid-effect, left effects unfinished.
  await reconciler.now();
  // The key id an operator compares with `bottle hosts` before `bottle hosts --trust`.
  say(`worker ready (host ${hostId}, host key ${hostKeyId(hostKeys.publicKey)}, concurrency ${concurrency})`);

  return {
    worker: workers.commands,
    async close() {
      shutdown.begin();
      await probe?.stop();
      await reconciler.settled();
      // Stop taking jobs before the heartbeat goes: a CLI waiting for this worker to
      // leave must not see it gone while it could still pick one up.
      await workers.close();
      await stopBeat();
      await queues.close();
      redis.disconnect();
    },
  };
}
