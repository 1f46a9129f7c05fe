import { describe, expect, it } from 'vitest';
import {
  accepts,
  bottleStatus,
  foldHistory,
  pendingEffects,
  stateName,
  type EffectRequest,
} from '../../../src/machines/index.js';
import { history, launchSteps, samplePlan, watchedPlan, type Step } from '../../golden/fixtures.js';

const ID = 'dev-a1b2c';
const watched = watchedPlan(ID);
const launched = launchSteps(ID, watched);

const gatewayExited: Step = [
  'sidecar.exited',
  { role: 'gateway', container: `cb-${ID}-gateway`, code: 137, signal: 'SIGKILL' },
];
const netwatchExited: Step = [
  'sidecar.exited',
  { role: 'netwatch', container: `cb-${ID}-netwatch`, code: 137, signal: 'SIGKILL' },
];
const exited = (code: number, signal: string | null = null): Step => ['agent.exited', { code, signal }];

const fold = (steps: Step[]) => foldHistory(ID, history(steps));
const kinds = (effects: EffectRequest[]) => effects.map((e) => e.kind);

describe('sidecars of a running bottle', () => {
  it('are watched from entering running, side by side with the agent', () => {
    const { state, effects } = fold(launched);
    expect(stateName(state)).toBe('running');
    expect(kinds(effects)).toEqual(['watch_agent', 'watch_sidecars']);
    expect(effects[1]).toEqual({ kind: 'watch_sidecars', identity: ID, causedBySeq: launched.length, params: {} });
  });

  it('are not watched for a plan from before the network watch, whose stored logs asked for watch_agent alone', () => {
    expect(kinds(fold(launchSteps(ID, samplePlan(ID))).effects)).toEqual(['watch_agent']);
  });

  it.each([
    ['gateway', gatewayExited],
    ['netwatch', netwatchExited],
  ])('a %s exit stops the agent, and the bottle is never shown running after it', (role, step) => {
    const { state, effects } = fold([...launched, step]);
    expect(stateName(state)).toBe('stopping');
    expect(bottleStatus(state)).toBe(`stopping (${role} exited)`);
    expect(effects).toEqual([
      { kind: 'stop_agent', identity: ID, causedBySeq: launched.length + 1, params: { by: null } },
    ]);
    expect(state.context.sidecarExit).toMatchObject({ role, code: 137, signal: 'SIGKILL' });
  });

  it('ends preserved with reason enforcement_lost once the stopped agent exits', () => {
    const steps: Step[] = [...launched, gatewayExited, exited(143, 'SIGTERM')];
    const { state, effects } = fold(steps);
    expect(stateName(state)).toBe('snapshotting');
    expect(kinds(effects)).toEqual(['snapshot_transcript']);
    const snapshotted: Step = ['transcript.snapshotted', { files: 1, bytes: 10, missing: false }];
    const preserving = fold([...steps, snapshotted]);
    expect(stateName(preserving.state)).toBe('preserving');
    expect(preserving.effects).toEqual([
      expect.objectContaining({ kind: 'preserve', params: { reason: 'enforcement_lost' } }),
    ]);
    const hint = `bottle resume ${ID}`;
    const preserved = fold([
      ...steps,
      snapshotted,
      ['bottle.preserved', { reason: 'enforcement_lost', resume_hint: hint }],
    ]);
    expect(stateName(preserved.state)).toBe('preserved');
    expect(preserved.state.context.preservedReason).toBe('enforcement_lost');
    expect(accepts(preserved.state, { type: 'bottle.resume_requested', data: { plan: watched } })).toBe(true);
  });

  it('keeps the state even when the stopped agent exits 0', () => {
    const snapshotted: Step = ['transcript.snapshotted', { files: 1, bytes: 10, missing: false }];
    const { state, effects } = fold([...launched, netwatchExited, exited(0), snapshotted]);
    expect(stateName(state)).toBe('preserving');
    expect(effects).toEqual([expect.objectContaining({ kind: 'preserve', params: { reason: 'enforcement_lost' } })]);
  });

  it('names the lost enforcement as the reason even when the user was stopping the bottle too', () => {
    const stop: Step = ['bottle.stop_requested', { by: 'cli' }];
    const snapshotted: Step = ['transcript.snapshotted', { files: 1, bytes: 10, missing: false }];
    const { effects } = fold([...launched, stop, gatewayExited, exited(143, 'SIGTERM'), snapshotted]);
    expect(effects).toEqual([expect.objectContaining({ kind: 'preserve', params: { reason: 'enforcement_lost' } })]);
  });

  it('asks again to stop an agent that has not stopped when the user asks', () => {
    const stop: Step = ['bottle.stop_requested', { by: 'cli' }];
    const { state, effects } = fold([...launched, gatewayExited, stop]);
    expect(stateName(state)).toBe('stopping');
    expect(effects).toEqual([expect.objectContaining({ kind: 'stop_agent', params: { by: 'cli' } })]);
  });

  it('a second sidecar exit changes nothing: the agent is already being stopped, the first exit is the reason', () => {
    const first = fold([...launched, gatewayExited]);
    const second = fold([...launched, gatewayExited, netwatchExited]);
    expect(second.effects).toEqual([]);
    expect(second.state.value).toBe('stopping');
    expect(second.state.context.sidecarExit).toEqual(first.state.context.sidecarExit);
  });

  it('leaves watch_sidecars settled by the exit, so a restarted worker does not watch again', () => {
    const pending = pendingEffects(ID, history([...launched, gatewayExited])).map((e) => `${e.kind}@${e.causedBySeq}`);
    expect(pending).toEqual([`watch_agent@${launched.length}`, `stop_agent@${launched.length + 1}`]);
  });

  it('settles watch_sidecars with the agent exit, so a preserved bottle asks for no watch', () => {
    const steps: Step[] = [...launched, exited(1)];
    expect(kinds(pendingEffects(ID, history(steps)))).toEqual(['snapshot_transcript']);
  });
});

describe('sidecar exits after the agent exited', () => {
  const snapshotted: Step = ['transcript.snapshotted', { files: 1, bytes: 10, missing: false }];

  it.each([
    ['snapshotting', [exited(0)]],
    ['cleaning', [exited(0), snapshotted]],
    ['cleaned', [exited(0), snapshotted, ['bottle.cleaned', {}]]],
    ['preserving', [exited(1), snapshotted]],
  ] as Array<[string, Step[]]>)('change nothing in %s (the teardown removes the sidecars)', (name, after) => {
    const before = fold([...launched, ...after]);
    const { state, effects } = fold([...launched, ...after, gatewayExited]);
    expect(stateName(state)).toBe(name);
    expect(effects).toEqual([]);
    expect({ ...state.context, seq: 0 }).toEqual({ ...before.state.context, seq: 0 });
  });

  it('end a clean exit as cleaned, not preserved', () => {
    const { state } = fold([...launched, exited(0), gatewayExited, snapshotted, ['bottle.cleaned', {}]]);
    expect(stateName(state)).toBe('cleaned');
  });
});
