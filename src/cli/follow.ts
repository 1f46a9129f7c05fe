import type { EventLog } from '../event-store/log.js';
import type { LifecycleEvent } from '../events/schema.js';

/**
 * Follows a bottle's stream from the last seq seen (never from "now", so an
 * event appended between enqueue and follow is not missed) until `until`
 * says stop. Returns the event that ended the follow, or undefined on abort.
 */
export async function followUntil(
  log: EventLog,
  identity: string,
  afterSeq: number,
  onEvent: (ev: LifecycleEvent) => void,
  until: (ev: LifecycleEvent) => boolean,
  signal?: AbortSignal,
): Promise<LifecycleEvent | undefined> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    for await (const ev of log.follow(identity, afterSeq, { signal: controller.signal, blockMs: 1000 })) {
      onEvent(ev);
      if (until(ev)) return ev;
    }
    return undefined;
  } finally {
    signal?.removeEventListener('abort', abort);
    controller.abort();
  }
}
