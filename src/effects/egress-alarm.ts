import type { DecisionLine } from '../gateway/protocol.js';
import type { ObservationEvent } from '../machines/effects.js';

/**
 * The alarm a batch of gateway decisions raises: one `egress.alarm` for every canary refusal in it
 * (counted), naming the latest, so a flood of them is one event per batch rather than one per request.
 */
export function canaryAlarm(decisions: readonly DecisionLine[]): ObservationEvent[] {
  const canaries = decisions.filter((d) => d.t === 'egress' && d.decision === 'denied' && d.reason === 'canary');
  const latest = canaries.at(-1);
  if (!latest || latest.t !== 'egress') return [];
  return [
    {
      type: 'egress.alarm',
      data: {
        at: latest.at ?? new Date().toISOString(),
        rule: latest.detail?.rule ?? 'canary',
        fingerprint: latest.detail?.fingerprint ?? '',
        host: latest.host ?? '',
        count: canaries.length,
      },
    },
  ];
}
