import { statusOf } from './docker/client.js';
import { PermanentEffectError } from './types.js';

/** Docker refusals that no retry can fix become permanent; everything else is left for the worker to retry. */
export async function classifyDockerErrors<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PermanentEffectError) throw err;
    const status = statusOf(err);
    if (status === 400) throw new PermanentEffectError(`${what}: Docker refused the request`, String(err));
    if (status === 404 && /image/i.test(String((err as Error).message))) {
      throw new PermanentEffectError(`${what}: image not found`, String(err));
    }
    throw err;
  }
}

/** The launch params of a bottle whose networks were made before they had fixed addresses. */
export function requireNetwork<T>(network: T | null): T {
  if (network === null) {
    throw new PermanentEffectError(
      "this bottle's networks were made by an earlier claude-bottle version without fixed addresses; " +
        'resume it to launch on new ones',
    );
  }
  return network;
}
