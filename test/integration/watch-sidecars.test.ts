import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { effectHandlers } from '../../src/effects/index.js';
import type { EffectContext } from '../../src/effects/types.js';
import type { BottlePlan } from '../../src/plan/schema.js';
import { heldLaunchSecrets } from '../support/launch-secrets.js';
import { noUploads } from '../support/no-uploads.js';
import { sweepIdentity, TEST_BASE_IMAGE, testDocker, testIdentity, testLabels, testPlan } from '../support/docker.js';

/** The watch_sidecars handler against real containers: sleepers standing in for the agent and its sidecars. */
const docker: Docker = testDocker();
const watchSidecars = effectHandlers({ docker }).watch_sidecars;
const identities: string[] = [];

afterEach(async () => {
  for (const identity of identities.splice(0)) await sweepIdentity(docker, identity);
});

async function sleeper(identity: string, name: string, role: string): Promise<void> {
  const container = await docker.createContainer({
    name,
    Image: TEST_BASE_IMAGE,
    Cmd: ['sleep', 'infinity'],
    Labels: testLabels(identity, role),
    HostConfig: { NetworkMode: 'none' },
  });
  await container.start();
}

/** A plan whose agent, gateway and (unless `unwatched`) network watch are running sleepers. */
async function runningBottle(unwatched = false): Promise<BottlePlan> {
  const identity = testIdentity('sidec');
  identities.push(identity);
  const base = testPlan(identity);
  const netwatch = `cb-${identity}-netwatch`;
  const plan = unwatched ? base : { ...base, containers: { ...base.containers, netwatch } };
  await sleeper(identity, plan.containers.agent, 'agent');
  await sleeper(identity, plan.containers.gateway, 'gateway');
  if (!unwatched) await sleeper(identity, netwatch, 'netwatch');
  return plan;
}

function watch(plan: BottlePlan, signal = new AbortController().signal) {
  const ctx: EffectContext = {
    identity: plan.identity,
    plan,
    observe: async () => undefined,
    progress: () => undefined,
    signal,
    lastEgressDecision: 0,
    secrets: heldLaunchSecrets(),
    uploads: noUploads,
  };
  return watchSidecars({ kind: 'watch_sidecars', identity: plan.identity, causedBySeq: 1, params: {} }, ctx);
}

const settledWithin = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('watch_sidecars', () => {
  it('reports a killed network watch while the agent runs, and keeps waiting until then', async () => {
    const plan = await runningBottle();
    const watching = watch(plan);
    expect(await settledWithin(watching, 500)).toBe(false);
    await docker.getContainer(plan.containers.netwatch!).kill({ signal: 'SIGKILL' });
    expect(await watching).toEqual([
      {
        type: 'sidecar.exited',
        data: { role: 'netwatch', container: plan.containers.netwatch, code: 137, signal: 'SIGKILL' },
      },
    ]);
  }, 30_000);

  it('reports a removed gateway (killed on the way, or gone: status unknown)', async () => {
    const plan = await runningBottle();
    const watching = watch(plan);
    await docker.getContainer(plan.containers.gateway).remove({ force: true });
    const [exit, ...more] = await watching;
    expect(more).toEqual([]);
    expect(exit.data).toMatchObject({ role: 'gateway', container: plan.containers.gateway });
    expect([
      { code: -1, signal: null },
      { code: 137, signal: 'SIGKILL' },
    ]).toContainEqual({ code: exit.data.code, signal: exit.data.signal });
  }, 30_000);

  it('reports the gateway of a plan from before the network watch', async () => {
    const plan = await runningBottle(true);
    const watching = watch(plan);
    await docker.getContainer(plan.containers.gateway).kill({ signal: 'SIGKILL' });
    expect((await watching).map((e) => e.data.role)).toEqual(['gateway']);
  }, 30_000);

  it('reports nothing when the agent stops first, nor when the teardown then removes the sidecars', async () => {
    const plan = await runningBottle();
    const watching = watch(plan);
    await docker.getContainer(plan.containers.agent).kill({ signal: 'SIGKILL' });
    expect(await watching).toEqual([]);
    // A retried watch (another worker) arriving during the teardown decides the same.
    await docker.getContainer(plan.containers.gateway).remove({ force: true });
    expect(await watch(plan)).toEqual([]);
  }, 30_000);

  it('a retried watch reports an exit it finds already happened, the same as the first watch did', async () => {
    const plan = await runningBottle();
    await docker.getContainer(plan.containers.gateway).kill({ signal: 'SIGKILL' });
    const [first, again] = [await watch(plan), await watch(plan)];
    expect(again).toEqual(first);
    expect(first.map((e) => e.data.role)).toEqual(['gateway']);
  }, 30_000);

  it('ends with nothing when the worker stops', async () => {
    const plan = await runningBottle();
    const stop = new AbortController();
    const watching = watch(plan, stop.signal);
    stop.abort();
    expect(await watching).toEqual([]);
  }, 30_000);
});
