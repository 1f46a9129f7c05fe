import type { Redis } from 'ioredis';
import type { NewEvent } from '../events/schema.js';
import { storeSealedSecrets } from '../engine/host-keys.js';
import { commandJobId, type CommandJob } from '../engine/queues.js';
import type { BottleEngine } from './engine.js';

/**
 * Decides a command a CLI enqueued: its event goes through the decide step
 * under the command's id, so a retried job appends it once.
 */
export async function runCommand(
  deps: { redis: Redis; engine: Pick<BottleEngine, 'apply'> },
  cmd: CommandJob,
): Promise<{ appended: number[] }> {
  // Stored before the append, so the launch it starts finds them; a retried job stores the same blob.
  if (cmd.sealed_secrets) await storeSealedSecrets(deps.redis, cmd.identity, cmd.sealed_secrets);
  const appended = await deps.engine.apply(
    cmd.identity,
    [cmd.event as NewEvent],
    commandJobId(cmd.identity, cmd.command_id),
  );
  return { appended: appended.map((e) => e.seq) };
}
