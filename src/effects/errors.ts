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

/** Socket errors of a connection to the daemon that never opened: nothing answers on its address. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EHOSTUNREACH', 'ETIMEDOUT']);

/**
 * Whether an effect failed because its Docker daemon could not be reached (stopped, restarting, its
 * socket gone): such a failure waits for the daemon instead of spending the effect's retries. Only
 * connect errors count, so a missing file (also ENOENT) is not taken for a missing daemon; dockerode
 * passes the socket error through, and a handler may have wrapped it (its cause, or its message).
 */
export function isDaemonUnreachable(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { code, syscall, message } = current as { code?: unknown; syscall?: unknown; message?: unknown };
    if (syscall === 'connect' && typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
    if (typeof message === 'string' && /\bconnect (ECONNREFUSED|ENOENT|EACCES) /.test(message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
