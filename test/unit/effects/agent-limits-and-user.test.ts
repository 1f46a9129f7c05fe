import { describe, expect, it } from 'vitest';
import { agentContainerSpec } from '../../../src/effects/docker/containers.js';
import { DEFAULT_LIMITS, planLimits } from '../../../src/plan/default-limits.js';
import { formatPlanText } from '../../../src/plan/format-text.js';
import { BottlePlanSchema } from '../../../src/plan/schema.js';
import { samplePlan, sampleNetwork } from '../../golden/fixtures.js';

const noLimits = { memory: null, cpus: null, pids: null };
/** The runsc pids cgroup ceiling for a limit of 256: room for gVisor's own threads (see pids-enforcement.ts). */
const RUNSC_CEILING_256 = 8448;

describe('default limits on the agent', () => {
  it('fills every limit the manifest leaves out and says which', () => {
    expect(planLimits({}, 'runc')).toEqual({
      ...DEFAULT_LIMITS,
      defaulted: ['memory', 'cpus', 'pids'],
      pids_enforcement: { nproc: null, cgroup: 1024 },
    });
    expect(planLimits({ memory: '8g' }, 'runc')).toMatchObject({
      memory: '8g',
      cpus: DEFAULT_LIMITS.cpus,
      pids: DEFAULT_LIMITS.pids,
      defaulted: ['cpus', 'pids'],
    });
    expect(DEFAULT_LIMITS).toEqual({ memory: '4g', cpus: 2, pids: 1024 });
  });

  it('means the same pids limit on both runtimes: the default is 1024 under runsc too', () => {
    expect(planLimits({}, 'runsc').pids).toBe(1024);
    expect(planLimits({ pids: 300 }, 'runsc').pids).toBe(300);
  });

  it("gives an older runsc plan's defaulted 16384 today's default; a pids the manifest set is kept", () => {
    const older = { memory: '4g', cpus: 2, pids: 16384, defaulted: ['pids' as const] };
    expect(planLimits(older, 'runsc')).toMatchObject({ pids: 1024, defaulted: ['pids'] });
    expect(planLimits({ memory: '4g', cpus: 2, pids: 16384 }, 'runsc').pids).toBe(16384);
  });

  it('gives the agent container bounded memory, cpus and pids even when the plan has none', () => {
    const spec = agentContainerSpec(samplePlan('dev-a1b2c', { limits: noLimits, runtime: 'runc' }), {
      env: {},
      network: sampleNetwork(),
    });
    expect(spec.HostConfig).toMatchObject({ Memory: 4 * 1024 ** 3, NanoCpus: 2e9, PidsLimit: 1024 });
  });

  it('under runc bounds the agent by the pids cgroup alone: no process rlimit', () => {
    const plan = samplePlan('dev-a1b2c', { limits: { memory: '4g', cpus: 2, pids: 256 }, runtime: 'runc' });
    const { HostConfig } = agentContainerSpec(plan, { env: {}, network: sampleNetwork() });
    expect(HostConfig?.PidsLimit).toBe(256);
    expect(HostConfig).not.toHaveProperty('Ulimits');
  });

  it("under runsc bounds the agent's user by RLIMIT_NPROC, the pids cgroup a ceiling above it for gVisor", () => {
    const plan = samplePlan('dev-a1b2c', { limits: { memory: '4g', cpus: 2, pids: 256 }, runtime: 'runsc' });
    const { HostConfig } = agentContainerSpec(plan, { env: {}, network: sampleNetwork() });
    expect(HostConfig?.Ulimits).toEqual([{ Name: 'nproc', Soft: 256, Hard: 256 }]);
    expect(HostConfig?.PidsLimit).toBe(RUNSC_CEILING_256);
  });

  it('keeps the manifest limits when set', () => {
    const plan = samplePlan('dev-a1b2c', { limits: { memory: '512m', cpus: 0.5, pids: 64 }, runtime: 'runc' });
    expect(agentContainerSpec(plan, { env: {}, network: sampleNetwork() }).HostConfig).toMatchObject({
      Memory: 512 * 1024 ** 2,
      NanoCpus: 5e8,
      PidsLimit: 64,
    });
  });

  it('shows the limits in the plan text, marking defaults, and in the plan JSON', () => {
    const limits = planLimits({ cpus: 4 }, 'runc');
    const plan = BottlePlanSchema.parse(samplePlan('dev-a1b2c', { limits, runtime: 'runc' }));
    expect(formatPlanText(plan)).toMatch(
      /^limits: +memory 4g \(default\), cpus 4, pids 1024 \(default\), transcript 256m \(default\)$/m,
    );
    expect(JSON.parse(JSON.stringify(plan)).limits).toEqual({
      memory: '4g',
      cpus: 4,
      pids: 1024,
      defaulted: ['memory', 'pids'],
      pids_enforcement: { nproc: null, cgroup: 1024 },
    });
  });

  it('says in the plan text and JSON how the pids limit is enforced on each runtime', () => {
    const runc = BottlePlanSchema.parse(
      samplePlan('dev-a1b2c', { limits: planLimits({ pids: 256 }, 'runc'), runtime: 'runc' }),
    );
    expect(formatPlanText(runc)).toMatch(
      /^processes: +at most 256 \(threads included\), by the container's pids cgroup$/m,
    );
    const runsc = BottlePlanSchema.parse(
      samplePlan('dev-a1b2c', { limits: planLimits({ pids: 256 }, 'runsc'), runtime: 'runsc' }),
    );
    expect(runsc.limits.pids_enforcement).toEqual({ nproc: 256, cgroup: RUNSC_CEILING_256 });
    expect(formatPlanText(runsc)).toMatch(
      new RegExp(
        "^processes: +at most 256 of the agent's user \\(threads included\\), by RLIMIT_NPROC inside gVisor; " +
          `.*a ceiling of ${RUNSC_CEILING_256}$`,
        'm',
      ),
    );
  });
});

describe('the transcript snapshot limit', () => {
  it("carries the manifest's limits.transcript into the plan and shows it; absent, the default is shown", () => {
    const limits = planLimits({ transcript: '64m' }, 'runc');
    expect(limits.transcript).toBe('64m');
    const plan = BottlePlanSchema.parse(samplePlan('dev-a1b2c', { limits, runtime: 'runc' }));
    expect(plan.limits.transcript).toBe('64m');
    expect(formatPlanText(plan)).toMatch(/, transcript 64m$/m);
    expect(planLimits({}, 'runc')).not.toHaveProperty('transcript');
  });
});

describe('the agent user', () => {
  it('is a uid:gid, never a name the image /etc/passwd could map to root', () => {
    const spec = agentContainerSpec(samplePlan(), { env: {}, network: sampleNetwork() });
    expect(spec.User).toBe('1000:1000');
  });
});

describe('a manifest that sets every limit', () => {
  it('plans exactly its limits, with nothing marked as default', () => {
    const limits = planLimits({ memory: '2g', cpus: 1, pids: 512 }, 'runsc');
    expect(limits).toMatchObject({ memory: '2g', cpus: 1, pids: 512 });
    expect(limits).not.toHaveProperty('defaulted');
  });
});
