import { describe, expect, it } from 'vitest';
import { runscCheck } from '../../../src/cli/commands/doctor.js';
import { formatPlanText } from '../../../src/plan/format-text.js';
import { BottlePlanSchema } from '../../../src/plan/schema.js';
import { chooseBackend } from '../../../src/shared/backend.js';
import { UsageError } from '../../../src/shared/errors.js';
import { runtimeNote } from '../../../src/shared/runtime.js';
import { fakePlan } from '../../support/fake-plan.js';

describe('CLAUDE_BOTTLE_BACKEND', () => {
  it('defaults to docker and accepts docker', () => {
    expect(chooseBackend({})).toBe('docker');
    expect(chooseBackend({ CLAUDE_BOTTLE_BACKEND: 'docker' })).toBe('docker');
  });

  it('refuses any other backend as a usage error naming the supported ones', () => {
    const refuse = () => chooseBackend({ CLAUDE_BOTTLE_BACKEND: 'podman' });
    expect(refuse).toThrow(UsageError);
    expect(refuse).toThrow('CLAUDE_BOTTLE_BACKEND="podman" is not supported; supported: docker');
  });
});

describe('runsc missing', () => {
  const dockerDesktopInfo = { Runtimes: { runc: { path: 'runc' }, 'io.containerd.runc.v2': {} } };

  it('doctor says how to install and register runsc on Debian/Ubuntu, and that macOS has none', () => {
    const check = runscCheck(dockerDesktopInfo);
    expect(check.status).toBe('warn');
    expect(check.what).toContain('bottles run under runc');
    expect(check.fix).toContain('sudo apt-get install -y runsc && sudo runsc install && sudo systemctl reload docker');
    expect(check.fix).toContain('Docker Desktop on macOS has no runsc');
  });

  it('doctor is content when the daemon has runsc', () => {
    expect(runscCheck({ Runtimes: { runc: {}, runsc: { path: '/usr/bin/runsc' } } }).status).toBe('ok');
    expect(runscCheck({}).status).toBe('warn');
  });

  it('the plan states plainly that the bottle runs under runc, and how to get runsc', () => {
    const note = runtimeNote('runc', {});
    const plan = BottlePlanSchema.parse(
      fakePlan('demo-abcde', { runtime: 'runc', backend: 'docker', runtime_note: note }),
    );
    const text = formatPlanText(plan);
    expect(text).toMatch(/^backend: +docker$/m);
    expect(text).toMatch(/^runtime: +runc: gVisor \(runsc\) is not registered with the Docker daemon/m);
    expect(text).toContain('sudo runsc install');
    expect(text).toContain('Docker Desktop on macOS has no runsc');
  });

  it('says nothing more under runsc, and names the setting when runc is forced', () => {
    expect(runtimeNote('runsc', {})).toBeUndefined();
    expect(runtimeNote('runc', { CLAUDE_BOTTLE_RUNTIME: 'runc' })).toContain('CLAUDE_BOTTLE_RUNTIME=runc');
  });

  it('a plan from before the backend was recorded still parses and shows docker', () => {
    const old = fakePlan('demo-abcde');
    expect(old.backend).toBeUndefined();
    expect(formatPlanText(BottlePlanSchema.parse(old))).toMatch(/^backend: +docker$/m);
  });
});
