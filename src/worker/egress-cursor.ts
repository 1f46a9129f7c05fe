import type { EventLog } from '../events/log.js';

/**
 * The highest gateway decision number already recorded for the bottle's
 * current gateway run. Decision numbers restart with each gateway container,
 * so only egress events after the last `gateway.started` count.
 */
export async function lastEgressDecision(log: EventLog, identity: string): Promise<number> {
  const events = await log.read(identity);
  let n = 0;
  for (const ev of events) {
    if (ev.type === 'gateway.started') n = 0;
    else if (ev.type === 'egress.allowed' || ev.type === 'egress.denied') n = Math.max(n, (ev.data as { n: number }).n);
  }
  return n;
}
