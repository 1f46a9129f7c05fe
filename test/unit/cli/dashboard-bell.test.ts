import { describe, expect, it } from 'vitest';
import { AttentionBell } from '../../../src/cli/dashboard-bell.js';
import { readDashboard } from '../../../src/cli/dashboard-data.js';
import type { Session } from '../../../src/cli/session.js';
import type { LifecycleEvent } from '../../../src/events/schema.js';
import { history, launchSteps, type Step } from '../../golden/fixtures.js';

/**
 * The dashboard's order and bell, read the way `bottle dashboard` reads them (readDashboard) from
 * event logs held in memory: the bottles' histories grow between two reads as they would in Redis.
 */
class MemoryLog {
  private readonly logs = new Map<string, LifecycleEvent[]>();

  launch(identity: string): void {
    this.logs.set(identity, history(launchSteps(identity)));
  }

  append(identity: string, ...steps: Step[]): void {
    const events = this.logs.get(identity)!;
    const start = Date.parse(events.at(-1)!.at) + 1000;
    events.push(...history(steps, start, events.length + 1));
  }

  async listBottles() {
    return [...this.logs.keys()].map((identity) => ({
      identity,
      agent: 'dev',
      bottle: 'box',
      host: '',
      started_at: '',
    }));
  }

  async lastSeq(identity: string): Promise<number> {
    return this.logs.get(identity)?.length ?? 0;
  }

  async liveState(): Promise<null> {
    return null;
  }

  async read(identity: string, fromSeq = 1): Promise<LifecycleEvent[]> {
    return (this.logs.get(identity) ?? []).filter((ev) => ev.seq >= fromSeq);
  }
}

const [A, B, C] = ['dev-aaaaa', 'dev-bbbbb', 'dev-ccccc'];
let n = 0;
const asks = (kind: 'permission' | 'question' | 'idle', message: string): Step => [
  'agent.attention',
  { n: ++n, kind, message },
];
const works = (): Step => ['agent.working', { n: ++n }];
const egressDenied = (): Step => [
  'egress.denied',
  { n: ++n, method: 'GET', host: 'denied.test', port: 80, reason: 'not in allowlist' },
];

function dashboardOf(log: MemoryLog) {
  const session = { log } as unknown as Session;
  return () => readDashboard(session, { egress: 8, events: 10 });
}

describe('the dashboard lists bottles that need you first', () => {
  it('puts the most urgent attention first, the rest in their order; one answered goes back among them', async () => {
    const log = new MemoryLog();
    for (const identity of [A, B, C]) log.launch(identity);
    const read = dashboardOf(log);
    expect((await read()).rows.map((r) => r.identity)).toEqual([A, B, C]);

    log.append(B, asks('idle', 'done'));
    log.append(C, asks('permission', 'Claude needs your permission to use Bash'));
    const asking = await read();
    expect(asking.rows.map((r) => r.identity)).toEqual([C, B, A]);
    expect(asking.rows[0].attentionLine).toBe('permission: Claude needs your permission to use Bash');

    log.append(C, works());
    expect((await read()).rows.map((r) => r.identity)).toEqual([B, A, C]);
  });
});

describe('the dashboard bell', () => {
  it('rings once per new attention: not for one already waiting, a redraw, a bottle at work or an answer', async () => {
    const log = new MemoryLog();
    for (const identity of [A, B, C]) log.launch(identity);
    const read = dashboardOf(log);
    const bell = new AttentionBell();

    // What already waited when the dashboard opened is not new.
    log.append(A, asks('idle', 'done'));
    expect(bell.ring(await read())).toBe(0);

    log.append(B, asks('question', 'which branch?'));
    expect(bell.ring(await read())).toBe(1);
    // The same attention drawn again, after another bottle's egress and with no change at all.
    log.append(C, egressDenied());
    expect(bell.ring(await read())).toBe(0);
    expect(bell.ring(await read())).toBe(0);

    // A later attention of the same bottle rings again, even with the same words.
    log.append(B, asks('question', 'which branch?'));
    expect(bell.ring(await read())).toBe(1);
    // A bottle at work, or one whose attention was answered, rings nothing.
    log.append(C, works());
    log.append(B, works());
    expect(bell.ring(await read())).toBe(0);
    // Two bottles asking between two reads: one bell each.
    log.append(B, asks('permission', 'Claude needs your permission to use Bash'));
    log.append(C, asks('idle', 'done'));
    expect(bell.ring(await read())).toBe(2);
    // An agent that exited asks for nothing.
    log.append(C, ['agent.exited', { code: 0, signal: null }]);
    expect(bell.ring(await read())).toBe(0);
  });

  it('remembers across the views left for an attached bottle: what was raised meanwhile rings on return', async () => {
    const log = new MemoryLog();
    for (const identity of [A, B]) log.launch(identity);
    const read = dashboardOf(log);
    const bell = new AttentionBell();
    expect(bell.ring(await read())).toBe(0);
    // Attached to A (the dashboard is not drawn), B asks; back from A, the next view is the first drawn again.
    log.append(B, asks('question', 'which branch?'));
    expect(bell.ring(await read())).toBe(1);
    expect(bell.ring(await read())).toBe(0);
  });
});
