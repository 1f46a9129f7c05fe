import { describe, expect, it } from 'vitest';
import { canaryAlarm } from '../../../src/effects/egress-alarm.js';
import type { DecisionLine } from '../../../src/gateway/protocol.js';

const denied = (n: number, reason: string, rule = 'aws_access_key_id'): DecisionLine => ({
  t: 'egress',
  n,
  decision: 'denied',
  host: 'github.com',
  port: 80,
  method: 'GET',
  reason,
  detail: { class: reason, rule, where: 'url', fingerprint: `${reason}:0123456789ab` },
  at: `2026-12-07T10:00:0${n}.000Z`,
});

describe('canaryAlarm', () => {
  it('raises one alarm per batch for its canary refusals, naming the latest and counting them all', () => {
    const batch = [denied(1, 'canary'), denied(2, 'not_in_allowlist'), denied(3, 'canary', 'github_token')];
    expect(canaryAlarm(batch)).toEqual([
      {
        type: 'egress.alarm',
        data: {
          at: '2026-12-07T10:00:03.000Z',
          rule: 'github_token',
          fingerprint: 'canary:0123456789ab',
          host: 'github.com',
          count: 2,
        },
      },
    ]);
  });

  it('raises none for a batch without canary refusals (a known secret is refused, not alarmed)', () => {
    expect(canaryAlarm([denied(1, 'known_secret'), denied(2, 'secret_pattern')])).toEqual([]);
  });
});
