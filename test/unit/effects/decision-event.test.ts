import { describe, expect, it } from 'vitest';
import { decisionEvent } from '../../../src/effects/watch-agent.js';
import { parseDecisionLine } from '../../../src/gateway/protocol.js';
import { parseNewEventData } from '../../../src/events/schema.js';

describe('decisionEvent', () => {
  it("records a gateway traffic summary line as an egress.summary observation with the line's number", () => {
    const host = {
      host: 'pypi.test',
      allowed: 4,
      denied: 1,
      bytes_up: 120,
      bytes_down: 90_000,
      methods: ['GET'],
      last_seen: '2026-12-07T10:00:00.000Z',
    };
    const line = parseDecisionLine(JSON.stringify({ t: 'summary', n: 9, hosts: [host], pending: 2, at: 'x' }));
    expect(line).toBeDefined();
    const event = decisionEvent(line!);
    expect(event).toEqual({ type: 'egress.summary', data: { n: 9, hosts: [host], pending: 2 } });
    expect(parseNewEventData(event.type, event.data)).toEqual(event.data);
  });

  it('takes no summary line with more hosts than one summary may carry', () => {
    const host = {
      host: 'a.test',
      allowed: 1,
      denied: 0,
      bytes_up: 0,
      bytes_down: 0,
      methods: [],
      last_seen: '2026-12-07T10:00:00Z',
    };
    const hosts = Array.from({ length: 33 }, () => host);
    expect(parseDecisionLine(JSON.stringify({ t: 'summary', n: 1, hosts, pending: 0 }))).toBeUndefined();
  });
});
