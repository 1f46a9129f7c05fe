import { describe, expect, it } from 'vitest';
import { foldHistory, stateName } from '../../../src/machines/index.js';
import {
  agentStarted,
  gatewayStarted,
  history,
  launchSteps,
  preLaunchSteps,
  sampleNetwork,
  samplePlan,
  watchedPlan,
  type Step,
} from '../../golden/fixtures.js';

const ID = 'dev-a1b2c';
const watched = watchedPlan(ID);
const gatewayReady: Step = ['gateway.ready', {}];
const upToAgent: Step[] = [
  ...preLaunchSteps(ID, watched),
  gatewayStarted(watched),
  gatewayReady,
  agentStarted(watched),
];

const kinds = (steps: Step[]) => foldHistory(ID, history(steps)).effects.map((e) => e.kind);
const state = (steps: Step[]) => stateName(foldHistory(ID, history(steps)).state);

describe('the network watch in the launch', () => {
  it('asks for the watch once the agent has started, with the launch networks, and is not running yet', () => {
    const { state: folded, effects } = foldHistory(ID, history(upToAgent));
    expect(stateName(folded)).toBe('launching');
    expect(effects).toEqual([
      expect.objectContaining({ kind: 'start_netwatch', params: { network: sampleNetwork(watched) } }),
    ]);
  });

  it('is running, and watches the agent and its sidecars, once the watch has attached', () => {
    const steps: Step[] = [...upToAgent, ['netwatch.started', { container: `cb-${ID}-netwatch` }]];
    expect(state(steps)).toBe('running');
    expect(kinds(steps)).toEqual(['watch_agent', 'watch_sidecars']);
  });

  it('is running when the watch was skipped because the agent had already exited, and then sees the exit', () => {
    const steps: Step[] = [...upToAgent, ['netwatch.skipped', { reason: 'the agent had already exited' }]];
    expect(state(steps)).toBe('running');
    expect(state([...steps, ['agent.exited', { code: 0, signal: null }]])).toBe('snapshotting');
  });

  it('fails the launch when the watch cannot attach for good: no agent runs unwatched', () => {
    const failed: Step = ['effect.failed', { effect: 'start_netwatch', error: 'no', attempt: 3, permanent: true }];
    const { state: folded, effects } = foldHistory(ID, history([...upToAgent, failed]));
    expect(stateName(folded)).toBe('failing');
    expect(folded.context.launchFailure).toEqual({ effect: 'start_netwatch', error: 'no' });
    expect(effects.map((e) => e.kind)).toEqual(['teardown_failed']);
  });

  it('keeps waiting for the watch through a transient failure', () => {
    const transient: Step = ['effect.failed', { effect: 'start_netwatch', error: 'x', attempt: 1, permanent: false }];
    expect(state([...upToAgent, transient])).toBe('launching');
  });

  it('runs a plan from before the watch (no netwatch container) as it did: running at the agent start', () => {
    const steps = launchSteps(ID, samplePlan(ID));
    expect(state(steps)).toBe('running');
    expect(kinds(steps)).toEqual(['watch_agent']);
  });
});
