import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../../src/events/schema.js';
import { foldEvents, initialBottleState, stateName } from '../../../src/machines/index.js';
import { samplePlan } from '../../golden/fixtures.js';

const ID = 'importer-0r1g1';
const imported = parseEvent({
  seq: 1,
  type: 'bottle.imported',
  at: '2026-12-07T19:00:00.000Z',
  v: 1,
  data: {
    agent: 'importer',
    cwd: '/home/user/project',
    copy_cwd: false,
    started_at: '2026-05-25T11:05:23.412Z',
    host: 'devbox',
    transcript: true,
    dockerfile: 'FROM x\n',
  },
});

describe('an imported state folder of the original tool', () => {
  it('goes from nothing to preserved, with no plan and no effect asked for', () => {
    const effects: string[] = [];
    const state = foldEvents(initialBottleState(ID), [imported], (_e, asked) =>
      effects.push(...asked.map((a) => a.kind)),
    );
    expect(stateName(state)).toBe('preserved');
    expect(state.context.plan).toBeNull();
    expect(effects).toEqual([]);
  });

  it('resumes like a preserved bottle: its resume prepares a launch with the new plan', () => {
    const resume = parseEvent({
      seq: 2,
      type: 'bottle.resume_requested',
      at: '2026-12-07T19:00:01.000Z',
      v: 1,
      data: { plan: samplePlan(ID) },
    });
    const state = foldEvents(initialBottleState(ID), [imported, resume]);
    expect(stateName(state)).toBe('preparing');
    expect(state.context.resumes).toBe(1);
  });

  it('is ignored by a bottle that already has a history', () => {
    const start = parseEvent({
      seq: 1,
      type: 'bottle.start_requested',
      at: '2026-12-07T19:00:00.000Z',
      v: 1,
      data: { plan: samplePlan(ID) },
    });
    const state = foldEvents(initialBottleState(ID), [start, { ...imported, seq: 2 }]);
    expect(stateName(state)).toBe('preparing');
  });
});
