import { describe, expect, it } from 'vitest';
import { agentContainerSpec } from '../../../src/effects/docker/containers.js';
import { DEFAULT_LIMITS, DEFAULT_RUNSC_PIDS, planLimits } from '../../../src/plan/default-limits.js';
import { formatPlanText } from '../../../src/plan/format-text.js';
import { BottlePlanSchema } from '../../../src/plan/schema.js';
import { samplePlan, sampleNetwork } from '../../golden/fixtures.js';

const noLimits = { memory: null, cpus: null, pids: null };

describe('default limits on the agent', () => {
  it('fills every limit the manifest leaves out and says which', () => {
    expect(planLimits({}, 'runc')).toEqual({ ...DEFAULT_LIMITS, defaulted: ['memory', 'cpus', 'pids'] });
    expect(planLimits({ memory: '8g' }, 'runc')).toEqual({
      memory: '8g',
      cpus: DEFAULT_LIMITS.cpus,
      pids: DEFAULT_LIMITS.pids,
      defaulted: ['cpus', 'pids'],
    });
    expect(DEFAULT_LIMITS).toEqual({ memory: '4g', cpus: 2, pids: 1024 });
  });

  it("leaves gVisor's sandbox threads room under the pids limit: runsc gets a higher default", () => {
    expect(planLimits({}, 'runsc').pids).toBe(DEFAULT_RUNSC_PIDS);
    expect(DEFAULT_RUNSC_PIDS).toBeGreaterThan(DEFAULT_LIMITS.pids);
    expect(planLimits({ pids: 300 }, 'runsc').pids).toBe(300);
  });

  it('gives the agent container bounded memory, cpus and pids even when the plan has none', () => {
    const spec = agentContainerSpec(samplePlan('dev-a1b2c', { limits: noLimits, runtime: 'runc' }), {
      env: {},
      network: sampleNetwork(),
    });
    expect(spec.HostConfig).toMatchObject({ Memory: 4 * 1024 ** 3, NanoCpus: 2e9, PidsLimit: 1024 });
  });

  it('keeps the manifest limits when set', () => {
    const plan = samplePlan('dev-a1b2c', { limits: { memory: '512m', cpus: 0.5, pids: 64 } });
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
    });
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
    expect(planLimits({ memory: '2g', cpus: 1, pids: 512 }, 'runsc')).toEqual({ memory: '2g', cpus: 1, pids: 512 });
  });
});
