import type { Redis } from 'ioredis';
import { uploadedSources } from '../blobs/materialize.js';
import type { DaemonLiveness, EffectContext, LaunchSecrets } from '../effects/types.js';
import type { BottleState, ObservationEvent } from '../machines/index.js';
import { BottlePlanSchema } from '../plan/schema.js';
import type { BottleLog } from '../engine/bottle-log.js';
import { discardSealedSecrets, readSealedSecrets } from '../engine/host-keys.js';
import { progressChannel } from '../engine/progress.js';
import { openSealedSecrets, type HostKeyPair } from '../shared/sealed-secrets.js';

/** What every effect this worker runs is given, whichever bottle it is for. */
export interface EffectContextSource {
  redis: Redis;
  log: BottleLog;
  /** Appends observations to the bottle's log (the decide step: fold, append, enqueue). */
  observe(identity: string, events: ObservationEvent[]): Promise<unknown>;
  hostId: string;
  hostKeys: HostKeyPair;
  daemon?: DaemonLiveness;
  /** The image tags of every kept bottle but the one named. */
  imagesInUse?(except: string): Promise<string[]>;
}

/** The context of one try of an effect for the bottle in `state`; the caller disposes its uploads. */
export function effectContext(
  source: EffectContextSource,
  identity: string,
  state: BottleState,
  signal: AbortSignal,
): EffectContext {
  const { redis, log } = source;
  const plan = BottlePlanSchema.parse(state.context.plan);
  return {
    identity,
    plan,
    signal,
    // The machine tracks the highest gateway decision recorded since the last gateway start.
    lastEgressDecision: state.context.lastEgressDecision,
    loggedEvent: async (seq) => (await log.read(identity, seq, seq))[0],
    observe: async (observed) => {
      await source.observe(identity, observed);
    },
    progress: (line) => {
      void redis.publish(progressChannel(identity), line).catch(() => undefined);
    },
    secrets: launchSecrets(source, identity),
    uploads: uploadedSources(redis, plan),
    daemon: source.daemon,
    ...(source.imagesInUse ? { imagesOfOtherBottles: () => source.imagesInUse!(identity) } : {}),
  };
}

/** The secrets the CLI sealed for this bottle's launch, opened in memory with this host's key. */
function launchSecrets(source: EffectContextSource, identity: string): LaunchSecrets {
  return {
    open: async () => {
      const blob = await readSealedSecrets(source.redis, identity);
      return blob && openSealedSecrets(blob, { identity, host: source.hostId, keys: source.hostKeys });
    },
    discard: () => discardSealedSecrets(source.redis, identity),
  };
}
