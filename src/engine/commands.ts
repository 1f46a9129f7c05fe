import type { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import type { NewEvent } from '../events/schema.js';
import type { SealedSecrets } from '../shared/sealed-secrets.js';
import { commandJobId, type CommandJob } from './queues.js';

/**
 * Sends a command (an event a bottle's machine decides on) as a job on the command queue, which any
 * worker may take. Its id is chosen here, so a job that is delivered twice is appended once; a
 * launch's route secrets ride along sealed, outside the event. Returns the command id.
 */
export async function enqueueCommand(
  queue: Queue,
  identity: string,
  event: NewEvent,
  sealedSecrets?: SealedSecrets,
): Promise<string> {
  const commandId = randomUUID();
  const job: CommandJob = {
    identity,
    command_id: commandId,
    event,
    ...(sealedSecrets ? { sealed_secrets: sealedSecrets } : {}),
  };
  await queue.add('command', job, { jobId: commandJobId(identity, commandId) });
  return commandId;
}
