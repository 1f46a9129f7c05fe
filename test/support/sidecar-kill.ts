import type { LifecycleEvent } from '../../src/events/schema.js';
import type { BottleHarness } from './cli-harness.js';

/** `bottle list`'s state of one bottle (undefined when it is not listed). */
export async function listedState(h: BottleHarness, identity: string): Promise<string | undefined> {
  const listed = await h.cli(['list', '--format', 'json']);
  if (listed.code !== 0) throw new Error(`bottle list failed: ${listed.stderr}`);
  const rows = JSON.parse(listed.stdout) as Array<{ identity: string; state: string }>;
  return rows.find((r) => r.identity === identity)?.state;
}

/**
 * Finding 21.6's reproduction, shared by its dedicated test (sidecar-exit) and the escape suite: `docker kill`
 * of a running bottle's gateway or network watch, then what the log and `bottle list` say until it is preserved.
 */
export async function killSidecar(h: BottleHarness, identity: string, role: 'netwatch' | 'gateway') {
  const killedAt = Date.now();
  await h.docker.getContainer(`cb-${identity}-${role}`).kill({ signal: 'SIGKILL' });
  const exitEvents = await h.waitForEvent(identity, 'sidecar.exited', 60_000);
  const exit = exitEvents.find((e) => e.type === 'sidecar.exited')!;
  const seen: string[] = [];
  for (let state = await listedState(h, identity); state !== 'preserved'; state = await listedState(h, identity)) {
    seen.push(state ?? '(missing)');
    if (seen.length >= 120) break;
  }
  const log: LifecycleEvent[] = await h.log.read(identity);
  return {
    exit,
    /** How long the loss went unrecorded. */
    unrecordedMs: Date.parse(exit.at) - killedAt,
    /** Every state `bottle list` showed between the exit and the preservation. */
    seen,
    log,
    preservedReason: (log.at(-1)?.type === 'bottle.preserved' ? log.at(-1)!.data : undefined) as
      { reason: string } | undefined,
  };
}
